"""Information gain: how much of the plan a place on the canvas still lacks, and brush footprints.

Gain is the absolute residual |target - canvas| per channel and position (our reading of
the paper's "information gain", ARCHITECTURE.md): painting a place copies the plan
there, so the residual is exactly what a stroke would transfer. A stroke's gain is the
gain summed over its footprint, computed for every centre at once by convolution.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .decisions import above
from .limits import LIMITS

BRUSHES = ("disk", "square", "soft")


def information_gain(target: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    """|target - canvas|, [C,H,W]."""
    return (target - canvas).abs()


def parse_channels(text: str) -> tuple[int, ...]:
    """Turn a channel list such as ``"0,2-3"`` into ``(0, 2, 3)``; empty or ``"all"`` gives ``()``.

    Whether the indices exist in the latent is only known when painting (:func:`channel_mask`).
    """
    if not isinstance(text, str):
        raise ValueError(f"channels: expected text such as '0,2-3', got {type(text).__name__}")
    cleaned = text.strip().lower()
    if cleaned in ("", "all", "*"):
        return ()
    hint = "write channel numbers and ranges such as 0,2-3 (leave empty for all channels)"
    chosen: set[int] = set()
    for token in cleaned.replace(";", ",").replace(" ", ",").split(","):
        if not token:
            continue
        first, dash, last = token.partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"channels: {token!r} in {text!r} is not a channel number or range; {hint}") from None
        if low < 0 or high < low:
            raise ValueError(f"channels: {token!r} in {text!r} is not a valid range; {hint}")
        if high > LIMITS["channel index"].high:
            raise ValueError(f"channels: channel {high} is beyond any latent (at most {LIMITS['channel index'].high:g}); {hint}")
        chosen.update(range(low, high + 1))
    return tuple(sorted(chosen))


def channel_mask(allowed: tuple[int, ...] | None, channels: int, device) -> torch.Tensor:
    """Bool [C] of the channels a painter may touch; refuses indices outside the latent."""
    mask = torch.zeros(channels, dtype=torch.bool, device=device)
    if allowed is None or len(allowed) == 0:
        mask[:] = True
        return mask
    bad = [c for c in allowed if not 0 <= c < channels]
    if bad:
        raise ValueError(
            f"channels {bad} are outside this {channels}-channel latent; "
            f"use indices 0..{channels - 1} or leave the list empty for all channels"
        )
    mask[list(allowed)] = True
    return mask


def motivation_level(motivation: torch.Tensor, threshold: float, allowed: torch.Tensor) -> float | None:
    """The accumulated gain a place needs before an action there is worth making:
    ``threshold`` times the mean over the allowed channels; None when any place qualifies."""
    if threshold <= 0:
        return None
    return float(motivation[allowed].mean()) * threshold


def eligible(motivation: torch.Tensor, level: float | None, allowed: torch.Tensor) -> torch.Tensor:
    """Float 0/1 weights (shaped like ``motivation``) of the places allowed and motivated.
    ``allowed`` is a bool per channel, or one bool when ``motivation`` is one channel's."""
    if allowed.dim() == 0:
        keep = allowed.to(motivation.dtype).expand_as(motivation)
    else:
        keep = allowed.to(motivation.dtype).view(-1, *([1] * (motivation.dim() - 1))).expand_as(motivation)
    if level is None:
        return keep
    return keep * above(motivation, level, "motivated places")


def motivated(motivation: torch.Tensor, threshold: float, allowed: torch.Tensor) -> torch.Tensor:
    """Bool [C,H,W]: where enough gain has built up for an action to be worth making.

    A place qualifies when its accumulated gain exceeds ``threshold`` times the mean
    accumulated gain over the allowed channels; threshold 0 lets every place qualify.
    """
    return eligible(motivation, motivation_level(motivation, threshold, allowed), allowed) > 0


@lru_cache(maxsize=256)
def _brush_cpu(radius: float, brush: str) -> torch.Tensor:
    if brush not in BRUSHES:
        raise ValueError(f"brush {brush!r} is unknown; use one of {', '.join(BRUSHES)}")
    radius = max(float(radius), 0.0)
    half = math.ceil(radius + 1) if brush == "soft" else math.floor(radius + 1e-6)
    offsets = torch.arange(-half, half + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    if brush == "square":
        return torch.ones(2 * half + 1, 2 * half + 1)
    distance = (dy * dy + dx * dx).sqrt()
    if brush == "disk":
        return (distance <= radius + 1e-6).float()
    # soft: full strength in the inner half, cosine fall-off to nothing one pixel outside the radius
    inner, outer = radius / 2, radius + 1
    ramp = ((distance - inner) / (outer - inner)).clamp(0, 1)
    return 0.5 * (1 + torch.cos(math.pi * ramp))


def brush_kernel(radius: float, brush: str, device) -> torch.Tensor:
    """[k,k] footprint weights in 0..1 (1 = the plan fully passes through), k odd, centred."""
    return _brush_cpu(round(float(radius), 4), brush).to(device)


def pooled_gain(gain: torch.Tensor, kernel: torch.Tensor, spans: tuple | None = None) -> torch.Tensor:
    """[H,W] gain of a stroke centred at every position: gain weighted by the footprint, summed.

    Zero padding means a stroke near the border is credited only with what it covers.
    Hard brushes (disk, square) are one run of ones per row, so their sums come from row
    prefix sums in O(H*W*k) instead of the O(H*W*k^2) of a convolution, which matters for
    the large strokes of large latents. ``spans`` (from :func:`brush_spans`) selects that path.
    """
    half = kernel.shape[-1] // 2
    if spans is None:
        return F.conv2d(gain[None, None], kernel[None, None], padding=half)[0, 0]
    height, width = gain.shape
    padded = F.pad(gain, (half, half, half, half))
    prefix = F.pad(padded.cumsum(1), (1, 0))  # prefix[:, j] = sum of padded[:, :j]
    pooled = torch.zeros_like(gain)
    for row, (first, last) in enumerate(spans):
        if first is None:
            continue
        rows = prefix[row : row + height]
        pooled += rows[:, last + 1 : last + 1 + width] - rows[:, first : first + width]
    return pooled


@lru_cache(maxsize=256)
def brush_spans(radius: float, brush: str) -> tuple | None:
    """Per kernel row of :func:`brush_kernel`, the first and last column of its run of ones
    ((None, None) for an empty row); None when the brush has soft weights."""
    kernel = _brush_cpu(round(float(radius), 4), brush)
    if not ((kernel == 0) | (kernel == 1)).all():
        return None
    spans = []
    for row in kernel.bool().tolist():
        ones = [i for i, on in enumerate(row) if on]
        if ones and ones != list(range(ones[0], ones[-1] + 1)):
            return None
        spans.append((ones[0], ones[-1]) if ones else (None, None))
    return tuple(spans)


def footprint(kernel: torch.Tensor, centre: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, torch.Tensor]:
    """The kernel placed at ``centre`` and clipped to the canvas: (top, left, mask [h,w])."""
    half = kernel.shape[-1] // 2
    height, width = size
    y, x = centre
    top, left = max(0, y - half), max(0, x - half)
    bottom, right = min(height, y + half + 1), min(width, x + half + 1)
    crop = kernel[top - (y - half) : bottom - (y - half), left - (x - half) : right - (x - half)]
    return top, left, crop
