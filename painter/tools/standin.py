"""An honest analytic stand-in for a diffusion model, to make real-looking plans without a checkpoint.

Inside ComfyUI the plan comes from the real model (the sampler callback's predicted originals), or
from a picture through Plan From Image. Outside it (tests, benchmarks, the demo) we need plans that
behave like a real run's, from real photos. The stand-in itself, the *exact* posterior-mean
denoiser of a Gaussian prior fitted to photos run through a real sampler loop (Euler steps of the
probability-flow ODE over a Karras schedule), lives in the engine (engine/prior.py), because Plan
From Image paints with it; the demo's plans are Plan From Image's (engine/picture.py). This module
names them for the tools and adds the re-encoded plan of a photo among several.
"""

from __future__ import annotations

import torch

from ..engine.picture import picture_plan
from ..engine.plan import LatentFormat, Plan, PlanError, check_latent, make_plan
from ..engine.prior import (
    RHO,
    SIGMA_MAX,
    SIGMA_MIN,
    GaussianPrior,
    WienerDenoiser,
    _radius,
    euler_sample,
    karras_sigmas,
    latent_format_from,
    photo_plan,
)

__all__ = [
    "GaussianPrior",
    "RHO",
    "SIGMA_MAX",
    "SIGMA_MIN",
    "WienerDenoiser",
    "euler_sample",
    "karras_sigmas",
    "latent_format_from",
    "photo_plan",
    "reencoded_photo_plan",
]


def reencoded_photo_plan(
    photos: torch.Tensor,
    index: int,
    encode,
    steps: int = 30,
    latent_format: LatentFormat | None = None,
) -> Plan:
    """A plan like a real run's x0 previews re-encoded into a latent space: Plan From Image's
    :func:`picture.picture_plan` on ``photos[index]`` (``photos`` ``[N,H,W,3]`` in 0..1), its prior
    fitted on all of them, each predicted original encoded with ``encode`` (``IMAGE -> [N,C,h,w]``).

    A latent-space stand-in's early originals are Wiener blurs of the latent, which no encoder would
    make, and decode with the decoder's grid; these are encodings of real images, as a real model's
    predictions decode to images (the look targets were measured on such a trajectory,
    ARCHITECTURE.md). The final latent is the encoded photo, bit for bit.
    """
    images = check_latent(photos, "photos", dims=4)
    if images.shape[-1] != 3:
        raise PlanError(f"stand-in plan: photos must be [N,H,W,3] images, got {tuple(images.shape)}")
    if not 0 <= index < images.shape[0]:
        raise PlanError(f"stand-in plan: photo index {index} is out of range for {images.shape[0]} photos")
    plan = picture_plan(images[index], encode, steps=steps, latent_format=latent_format, prior_images=images)
    if latent_format is None:
        plan = make_plan(plan.originals, plan.final, plan.sigmas, latent_format_from(plan.originals))
    return plan
