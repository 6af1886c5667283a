"""A linear latent -> RGB projection fitted against a decoder (ComfyUI's ``latent_rgb_factors``).

Each latent pixel stands for a ``s x s`` patch of the decoded image (s = 8 for TAESD and the SD
family). Average-pooling the decoded image to latent resolution and regressing it on the latents
gives the best per-pixel linear preview: cheap enough to score every frame, faithful enough to
tell how *visible* a latent change is (change pacing relies on it: ARCHITECTURE.md "Targets").

The factors act on the tensors they were fitted on: fit on LATENT-space tensors (plan space) and
apply them there. ComfyUI's own ``latent_rgb_factors`` act on model-space ``x0``
(``(x - shift) * scale``); to reuse those on latent-space tensors multiply the factors by
``scale`` and subtract ``shift * scale * factors.sum(0)`` from the bias
(:func:`factors_through_affine` does this for any per-channel affine map).
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce

# Relative ridge added to the normal equations: keeps the solve finite when a channel is constant
# (e.g. a flat test image) without measurably biasing a well-posed fit.
RIDGE = 1e-8


def _check(latents: torch.Tensor, images: torch.Tensor) -> int:
    if not isinstance(latents, torch.Tensor) or latents.dim() != 4:
        shape = getattr(latents, "shape", type(latents).__name__)
        raise ValueError(f"fit_rgb_factors: latents must be [N,C,h,w], got {shape}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != 3:
        shape = getattr(images, "shape", type(images).__name__)
        raise ValueError(f"fit_rgb_factors: images must be an IMAGE tensor [N,H,W,3], got {shape}")
    n, _, h, w = latents.shape
    if images.shape[0] != n:
        raise ValueError(f"fit_rgb_factors: {n} latents but {images.shape[0]} images; give one decoded image per latent")
    height, width = images.shape[1:3]
    if height % h or width % w or height // h != width // w:
        raise ValueError(
            f"fit_rgb_factors: images {height}x{width} are not a whole multiple of the {h}x{w} latents in both directions; "
            "pass the decoder's output for these latents"
        )
    return height // h


def pool_to_latent(images: torch.Tensor, factor: int) -> torch.Tensor:
    """``[N,H,W,3] -> [N,H/f,W/f,3]`` by averaging each ``f x f`` patch (what one latent pixel covers)."""
    return reduce(images.to(torch.float32), "n (h fy) (w fx) rgb -> n h w rgb", "mean", fy=factor, fx=factor)


def fit_rgb_factors(latents: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``factors [C,3]``, ``bias [3]`` with ``pool(images) ~= latents . factors + bias``.

    ``images`` are the decodes of ``latents`` (``[N, s*h, s*w, 3]``); ``s`` is inferred. Returned
    on the latents' device, float32.
    """
    factor = _check(latents, images)
    channels = latents.shape[1]
    x = rearrange(latents.detach().to(torch.float32), "n c h w -> (n h w) c")
    y = pool_to_latent(images.detach().to(x.device), factor).reshape(-1, 3)
    # Centring makes the bias exact and keeps the Gram matrix well conditioned; the big reductions
    # stay on the tensors' device, only the CxC solve moves to the CPU, in float64, because that
    # is where float32 loses digits (and some backends have no float64 or no solver).
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    gram = (xc.T @ xc).to("cpu", torch.float64)
    cross = (xc.T @ yc).to("cpu", torch.float64)
    ridge = RIDGE * gram.diagonal().mean().clamp_min(1e-30)
    factors64 = torch.linalg.solve(gram + ridge * torch.eye(channels, dtype=torch.float64), cross)
    factors = factors64.to(x.device, torch.float32)
    bias = (y_mean.to(torch.float64).cpu() - x_mean.to(torch.float64).cpu() @ factors64).to(x.device, torch.float32)
    return factors, bias


def project_rgb(latents: torch.Tensor, factors, bias=None) -> torch.Tensor:
    """``[N,C,h,w]`` (or ``[C,h,w]``) latents -> ``[N,h,w,3]`` (or ``[h,w,3]``) linear RGB preview, not clamped.

    ``factors``/``bias`` may be tensors or nested sequences (``LatentFormat.rgb_factors``).
    """
    single = latents.dim() == 3
    if single:
        latents = latents[None]
    if latents.dim() != 4:
        raise ValueError(f"project_rgb: latents must be [N,C,h,w] or [C,h,w], got {tuple(latents.shape)}")
    factors = torch.as_tensor(factors, dtype=torch.float32, device=latents.device)
    if factors.shape != (latents.shape[1], 3):
        raise ValueError(
            f"project_rgb: factors have shape {tuple(factors.shape)}, expected ({latents.shape[1]}, 3) for these latents"
        )
    rgb = torch.einsum("nchw,ck->nhwk", latents.to(torch.float32), factors)
    if bias is not None:
        rgb = rgb + torch.as_tensor(bias, dtype=torch.float32, device=latents.device)
    return rgb[0] if single else rgb


def explained_variance(latents: torch.Tensor, images: torch.Tensor, factors, bias) -> float:
    """R^2 of the projection against the pooled images: 1 is perfect, 0 is no better than the mean colour."""
    factor = _check(latents, images)
    target = pool_to_latent(images.to(latents.device), factor)
    residual = target - project_rgb(latents, factors, bias)
    total = target - target.reshape(-1, 3).mean(0)
    return float(1.0 - residual.square().sum() / total.square().sum().clamp_min(1e-30))


# Latents decoded to fit factors against a connected decoder: enough pixels for a [C,3] fit
# (each latent pixel is a sample), few enough to cost less than the calibration probes.
DECODER_FIT_LATENTS = 8


def fit_rgb_to_decoder(latents: torch.Tensor, decode, count: int = DECODER_FIT_LATENTS) -> torch.Tensor | None:
    """Latent->RGB ``factors [C,3]`` fitted against ``decode`` on ``count`` of ``latents``
    ``[N,C,h,w]`` spread from first to last (e.g. a canvas and a plan's targets, blurry to sharp).

    For plans that carry no preview factors (plans built from bare latents, formats whose factors
    cannot be carried over):
    with a VAE at hand the change estimate then sees colour as this VAE shows it. None when the
    decoder's images do not line up with the latents (a decoder this fit cannot read).
    """
    picks = torch.linspace(0, latents.shape[0] - 1, min(count, latents.shape[0])).round().long().unique()
    sample = latents[picks.to(latents.device)].contiguous()
    images = decode(sample)
    try:
        factors, _ = fit_rgb_factors(sample, torch.as_tensor(images).to(sample.device, torch.float32))
    except ValueError:
        return None
    return factors if bool(torch.isfinite(factors).all()) else None


def principal_projection(latent: torch.Tensor, components: int = 3) -> torch.Tensor:
    """``[C, k]`` (k = min(components, C)): the directions in channel space along which ``latent``
    ``[C,h,w]`` varies most over its pixels (orthonormal columns, from its centred SVD).

    The change estimate of a latent format without preview factors when no decoder is at hand:
    what a VAE latent varies along most over a finished image is mostly its light, colour and
    layout, so a change seen through these directions tracks the change a decoder shows far
    better than raw latent units do. Measured against decoded taef2 frames (bench_look, the gap
    between the cumulative shares of estimated and decoded change): raw latent units 0.14 for a
    painting and 0.13 for a transition, these directions 0.085 and 0.07 (fitted preview
    factors: 0.05 and 0.10). Deterministic: the SVD runs in float64 on the CPU.
    """
    flat = latent.detach().reshape(latent.shape[0], -1).to("cpu", torch.float64)
    centred = flat - flat.mean(dim=1, keepdim=True)
    directions, _, _ = torch.linalg.svd(centred, full_matrices=False)
    return directions[:, : min(components, latent.shape[0])].to(latent.device, torch.float32).contiguous()


__all__ = ["explained_variance", "factors_in_latent_space", "factors_through_affine", "fit_rgb_factors",
           "fit_rgb_to_decoder", "pool_to_latent", "principal_projection", "project_rgb"]


def factors_through_affine(factors, bias, gain: torch.Tensor, offset: torch.Tensor):
    """RGB factors that act on ``x`` when ``factors``/``bias`` act on ``gain * x + offset``
    (per channel), e.g. ComfyUI's model-space preview factors carried to LATENT space:
    ``rgb = (gain * x + offset) @ F + b = x @ (gain[:, None] * F) + (offset @ F + b)``."""
    factors = torch.as_tensor(factors, dtype=torch.float64)
    bias = torch.zeros(3, dtype=torch.float64) if bias is None else torch.as_tensor(bias, dtype=torch.float64)
    gain, offset = gain.to(torch.float64), offset.to(torch.float64)
    return gain[:, None] * factors, offset @ factors + bias


def factors_in_latent_space(factors, bias, process_in, channels: int, dims: int = 2, reshape=None):
    """``(factors [C,3], bias [3])`` in float64 that act on LATENT-space latents, one colour per latent
    pixel, when a host's preview ``factors``/``bias`` act on ``process_in(latents)`` (ComfyUI's model
    space), after ``reshape`` where given; None when they cannot be carried over.

    - ``reshape`` (Flux.2's ``latent_rgb_factors_reshape``: 128 channels -> 32 at twice the side) is
      probed with one latent pixel per channel: a channel's factors are the mean colour it gives the
      block of pixels its latent pixel becomes; a reshape that is no rearrangement is refused.
    - ``process_in`` must be per-channel affine; it is read off probes of the format's own shape
      (``[1,C,1,1]``, or ``[1,C,1,1,1]`` for ``dims = 3``: Wan21/Wan22's mean and std work on 5-D
      tensors only) and checked on a third, so a format that is not gets no factors.
    """
    factors = torch.as_tensor(factors, dtype=torch.float64)
    bias = torch.zeros(3, dtype=torch.float64) if bias is None else torch.as_tensor(bias, dtype=torch.float64)
    if reshape is not None:
        ones = torch.eye(channels, dtype=torch.float64).reshape(channels, channels, 1, 1)
        unpacked = reshape(ones)
        if unpacked.dim() != 4 or unpacked.shape[:2] != (channels, factors.shape[0]):
            return None
        if not torch.equal(unpacked.abs().sum((1, 2, 3)), torch.ones(channels, dtype=torch.float64)):
            return None  # not a rearrangement: each channel must land on exactly one place
        factors = torch.einsum("ckij,kr->cr", unpacked, factors) / (unpacked.shape[2] * unpacked.shape[3])
    if factors.shape != (channels, 3) or bias.shape != (3,):
        return None
    shape = (1, channels) + (1,) * dims

    def probe(x):
        return process_in(x.to(torch.float32)).to(torch.float64).reshape(channels)

    offset = probe(torch.zeros(shape, dtype=torch.float64))
    gain = probe(torch.ones(shape, dtype=torch.float64)) - offset
    values = torch.linspace(-2.0, 3.0, channels, dtype=torch.float64)
    if not torch.allclose(probe(values.reshape(shape)), gain * values + offset, rtol=1e-4, atol=1e-5):
        return None
    return factors_through_affine(factors, bias, gain, offset)
