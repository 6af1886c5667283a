"""Latents between two latents: the one implementation of lerp and slerp, used by transition
guidance, the Interpolate baseline node and the metrics' baselines.

Rules, the same for every caller: a share of 0 gives ``a`` and a share of 1 gives ``b`` bit for
bit; slerp falls back to lerp where the angle is meaningless (a zero latent) or numerically
unstable (|cos| > PARALLEL: nearly parallel or antiparallel latents).
"""

from __future__ import annotations

import torch

from .limits import checked

INTERPOLATIONS = ("lerp", "slerp")
PARALLEL = 0.9995


def interpolate(a: torch.Tensor, b: torch.Tensor, shares: torch.Tensor, how: str = "lerp") -> torch.Tensor:
    """Latents between ``a`` and ``b`` ([C,H,W]) at ``shares`` (0 = a, 1 = b) -> [N,C,H,W].

    slerp is the classic ``sin((1-t)w)/sin(w) a + sin(tw)/sin(w) b`` with w the angle between
    the flattened latents: when |a| = |b| every in-between latent keeps that norm."""
    if how not in INTERPOLATIONS:
        raise ValueError(f"interpolation {how!r} is unknown; use {' or '.join(INTERPOLATIONS)}")
    shares = shares.to(a.device, torch.float32).view(-1, 1, 1, 1)
    angle = _angle(a, b) if how == "slerp" else None
    if angle is None:
        out = torch.lerp(a[None], b[None], shares)
    else:
        weight_a = torch.sin((1 - shares) * angle) / angle.sin()
        weight_b = torch.sin(shares * angle) / angle.sin()
        out = weight_a * a[None] + weight_b * b[None]
    if not torch.isfinite(out).all():
        raise ValueError(f"{how}: the latents are too large to interpolate (values near the float32 limit); "
                         "use latents of ordinary size")
    return torch.where(shares == 0, a[None], torch.where(shares == 1, b[None], out))


def _angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """The angle between the flattened latents, or None where slerp degenerates to lerp."""
    # In float64: the squared norms of float32 latents near 1e38 overflow float32 (cosine 0, NaN out).
    flat_a, flat_b = a.flatten().double(), b.flatten().double()
    norms = flat_a.norm() * flat_b.norm()
    if not norms > 0:
        return None
    cosine = (flat_a @ flat_b / norms).float()
    if cosine.abs() > PARALLEL:
        return None
    return torch.arccos(cosine.clamp(-1.0, 1.0))


def latents_between(a, b, n: int, how: str) -> torch.Tensor:
    """``[n,C,H,W]`` from ``a`` to ``b`` at equal shares, both endpoints included exactly; ``a``
    and ``b`` may be [C,H,W] or [1,C,H,W]."""
    a, b = _endpoints(a, b, n)
    return interpolate(a, b, torch.linspace(0.0, 1.0, n, device=a.device), how)


def lerp_latents(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """``[n,C,H,W]``: straight-line interpolation from ``a`` to ``b``, both endpoints included exactly."""
    return latents_between(a, b, n, "lerp")


def slerp_latents(a: torch.Tensor, b: torch.Tensor, n: int) -> torch.Tensor:
    """``[n,C,H,W]``: spherical interpolation of the flattened latents, both endpoints exact
    (lerp for zero, nearly parallel or antiparallel latents; see :func:`interpolate`)."""
    return latents_between(a, b, n, "slerp")


def _endpoints(a, b, n) -> tuple[torch.Tensor, torch.Tensor]:
    checked("interpolated frames", n)
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise ValueError("the two ends must be latent tensors")
    if a.dim() == 4 and a.shape[0] == 1:
        a = a[0]
    if b.dim() == 4 and b.shape[0] == 1:
        b = b[0]
    if a.dim() != 3 or a.shape != b.shape:
        raise ValueError(f"the ends {tuple(a.shape)} and {tuple(b.shape)} must be single latents [C,H,W] of one shape")
    return a.to(torch.float32), b.to(device=a.device, dtype=torch.float32)
