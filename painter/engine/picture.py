"""Plans that end exactly on a picture the user has.

- :func:`picture_plan`: a rough-to-fine plan from a finished image, with no model. The image's
  exact inversion under a Gaussian prior fitted to the image itself is sampled back with Euler
  steps (engine/prior.py), in pixel space, and every predicted original, a blurry-to-sharp image,
  is encoded by the VAE, as a real run's predictions are images of the latent space. The plan
  ends on the encoded image itself, bit for bit.
- :func:`land_on`: any plan made to end exactly on a given latent (a model's run ends on its own
  reconstruction, not on the user's picture). The difference between the plan's end and the
  latent is faded in along the plan, coarse before fine and at the plan's own pace, so the last
  schedules add no more than the plan's last steps do: no jump in the last frames.

The VAE reaches this module as a plain ``encode(images [N,H,W,3] in 0..1) -> latents [N,C,h,w]``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .limits import LIMITS, checked
from .plan import LatentFormat, Plan, PlanError, check_latent, make_plan
from .prior import SIGMA_MAX, SIGMA_MIN, latent_format_from, photo_plan

# roughness 1 starts at the stand-in's usual sigma_max (colour blobs, like a real run's first
# steps); lower values start closer to the finished image, log-evenly down to SIGMA_MIN.
ROUGHNESS_DEFAULT = 1.0
# The difference faded in by land_on starts as a blur whose standard deviation is this share of
# the latent's larger side (broad colour shifts first), shrinking to nothing at the plan's end.
LANDING_BLUR = 0.25

Encoder = Callable[[torch.Tensor], torch.Tensor]


def start_sigma(roughness: float) -> float:
    """The noise level the run starts from for a ``roughness`` in (0, 1]: ``SIGMA_MAX`` at 1."""
    checked("roughness", roughness)
    # never quite SIGMA_MIN itself: the schedule needs sigma_max > sigma_min
    return max(SIGMA_MIN * (SIGMA_MAX / SIGMA_MIN) ** float(roughness), SIGMA_MIN * 1.001)


def land_on(targets: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """``targets [T,C,H,W]`` moved so the last one is ``end [C,H,W]`` exactly (a copy of it).

    The difference ``end - targets[-1]`` is added to every target through a Gaussian low-pass
    whose width shrinks with the plan's progress (the share of its own path, summed step to step,
    travelled so far): the difference's broad colour arrives with the plan's rough steps and its
    fine detail with the last ones, in proportion to how much the plan itself still moves.
    """
    targets = check_latent(targets, "plan targets", dims=4)
    end = check_latent(end, "end latent", dims=3).to(targets.device)
    if end.shape != targets.shape[1:]:
        raise PlanError(f"the end latent is {_shape(end.shape)} but the plan is {_shape(targets.shape[1:])}; "
                        "encode the image at the size that was sampled, with the model's VAE")
    steps, _, height, width = targets.shape
    travelled = torch.zeros(steps, dtype=torch.float64, device=targets.device)
    if steps > 1:
        moves = (targets[1:] - targets[:-1]).flatten(1).double().norm(dim=1)
        travelled[1:] = moves.cumsum(0)
    total = float(travelled[-1])
    progress = travelled / total if total > 0 else torch.linspace(0, 1, steps, dtype=torch.float64)
    difference = torch.fft.rfft2(end - targets[-1])
    fy = torch.fft.fftfreq(height, device=targets.device)
    fx = torch.fft.rfftfreq(width, device=targets.device)
    frequency2 = fy[:, None] ** 2 + fx[None, :] ** 2
    landed = torch.empty_like(targets)
    widest = LANDING_BLUR * max(height, width)
    for index in range(steps - 1):
        blur = widest * (1.0 - float(progress[index]))
        gain = torch.exp(-2.0 * math.pi**2 * blur**2 * frequency2)
        landed[index] = targets[index] + torch.fft.irfft2(gain * difference, s=(height, width))
    landed[-1] = end
    return landed


def land_plan(plan: Plan, end: torch.Tensor) -> Plan:
    """``plan`` ending exactly on ``end [C,H,W]`` (:func:`land_on` over its schedule targets)."""
    targets = plan.targets
    sigmas = plan.sigmas
    if sigmas.numel() and targets.shape[0] == sigmas.numel() + 1:  # the final latent is a schedule of its own
        sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    landed = land_on(targets, end)
    return make_plan(landed, landed[-1], sigmas, plan.latent_format)


def picture_plan(
    image: torch.Tensor,
    encode: Encoder,
    steps: int = 30,
    roughness: float = ROUGHNESS_DEFAULT,
    final: torch.Tensor | None = None,
    latent_format: LatentFormat | None = None,
    prior_images: torch.Tensor | None = None,
    progress=None,
) -> Plan:
    """A plan whose predicted originals go from rough to ``image [H,W,3]`` (0..1), ending exactly on
    its encoding.

    ``final [C,h,w]`` is where the plan ends, bit for bit (default ``encode(image[None])[0]``, the
    core VAE Encode of the image). ``prior_images [M,H',W',3]`` fit the prior (default: the image
    itself). ``progress(done, total)`` is called after each encode and may raise to stop.
    """
    image = check_latent(image, "image", dims=3)
    if image.shape[-1] != 3:
        raise PlanError(f"image must be an RGB image [H,W,3], got {tuple(image.shape)}")
    if not LIMITS["plan steps"].admits(steps):
        raise PlanError(f"steps must be {LIMITS['plan steps'].describe()}, got {steps}")
    sigma_max = start_sigma(roughness)
    pixels = image.permute(2, 0, 1)
    prior = pixels[None] if prior_images is None else check_latent(prior_images, "prior images", dims=4).permute(0, 3, 1, 2)
    if float(prior.std()) <= 1e-6:
        raise PlanError("the image is one flat colour: there is nothing to paint from rough to fine; give a picture")
    # stand-in run in pixel space; its format only normalises pixels to about unit std
    run = photo_plan(pixels, prior.to(pixels.device), steps=steps, sigma_max=sigma_max,
                     latent_format=latent_format_from(prior))
    rough = run.targets.clamp(0, 1).permute(0, 2, 3, 1)
    total = rough.shape[0] + (final is None)
    encoded = []
    for index, picture in enumerate(rough):
        encoded.append(_encode_one(encode, picture))
        if progress is not None:
            progress(index + 1, total)
    if final is None:
        final = _encode_one(encode, image)
        if progress is not None:
            progress(total, total)
    originals = torch.stack(encoded)
    return make_plan(land_on(originals, final), final, run.sigmas, latent_format)


def latent_picture_plan(latent: torch.Tensor, steps: int = 30, roughness: float = ROUGHNESS_DEFAULT,
                        latent_format: LatentFormat | None = None) -> Plan:
    """The same as :func:`picture_plan` with no VAE: the run happens on ``latent [C,h,w]`` itself (its
    prior fitted on it), ending exactly on it. Early steps are blurs of a latent, which decoders
    may show with their own texture; :func:`picture_plan` through the VAE has none."""
    latent = check_latent(latent, "latent", dims=3)
    run = photo_plan(latent, latent[None], steps=steps, sigma_max=start_sigma(roughness),
                     latent_format=latent_format_from(latent[None]))
    return make_plan(land_on(run.targets, latent), latent, run.sigmas, latent_format)


def _encode_one(encode: Encoder, picture: torch.Tensor) -> torch.Tensor:
    latent = encode(picture[None].contiguous())
    if not isinstance(latent, torch.Tensor) or latent.dim() != 4 or latent.shape[0] != 1:
        shape = tuple(latent.shape) if isinstance(latent, torch.Tensor) else type(latent).__name__
        raise PlanError(f"the VAE encoded one image to {shape}, not one latent [1,C,h,w]; connect an image VAE")
    return check_latent(latent[0], "encoded image", dims=3)


def _shape(shape) -> str:
    return "x".join(str(int(n)) for n in shape)
