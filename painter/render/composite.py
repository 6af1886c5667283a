"""Compositing decoded frames: the white canvas (paper where nothing was painted yet) and the
stroke map drawn beside a frame.

Images are ComfyUI ``IMAGE`` tensors ``[N,H,W,3]`` float in 0..1. Latent-resolution maps (coverage,
strokes, channels) are ``[N,h,w]`` and are upsampled to the decoded size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine.timeline import Painting


@dataclass(frozen=True, eq=False)
class StrokeMaps:
    """The latent-resolution maps a stroke map is drawn from (see :class:`Painting`).

    coverage [N,h,w] cumulative stroke accumulator, strokes [N,h,w] this frame's change (0..1),
    channels [N,h,w] painted channel (-1 nothing, -2 several), num_channels for the hue wheel.
    """

    coverage: torch.Tensor
    strokes: torch.Tensor
    channels: torch.Tensor
    num_channels: int

    @classmethod
    def from_coverage(cls, coverage: torch.Tensor, num_channels: int) -> "StrokeMaps":
        """Maps from coverage alone (e.g. a MASK): grey coverage, no per-frame strokes or channels."""
        return cls(coverage, torch.zeros_like(coverage), torch.full_like(coverage, -1, dtype=torch.int16), num_channels)

    @classmethod
    def of(cls, source) -> "StrokeMaps":
        """The maps of a :class:`Painting` (or ``source`` itself when it already is maps)."""
        if isinstance(source, StrokeMaps):
            return source
        if isinstance(source, Painting):
            return cls(source.coverage, source.strokes, source.channels, int(source.frames.shape[1]))
        raise ValueError(f"stroke maps: expected a Painting or StrokeMaps, got {type(source).__name__}")


def coverage_mask(coverage: torch.Tensor) -> torch.Tensor:
    """Coverage as a MASK in 0..1: divided by its largest value over all frames, so 0 still
    means never painted and growth between frames stays visible."""
    peak = coverage.max()
    return coverage / peak if peak > 0 else torch.zeros_like(coverage)


def _gaussian_blur(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``[n,1,H,W]`` with edge replication (a constant field stays constant)."""
    if field.shape[1] != 1:
        n, c, h, w = field.shape
        return _gaussian_blur(field.reshape(n * c, 1, h, w), sigma).reshape(n, c, h, w)
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=field.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(field, (radius, radius, 0, 0), mode="replicate")
    field = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    padded = F.pad(field, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(padded, kernel.view(1, 1, -1, 1))


# The soft mask's edge: the smoothed painted field crosses from paper to paint between these
# two levels (half a latent pixel at 8x: about 4 pixels of feathering).
FEATHER_LOW, FEATHER_HIGH = 0.25, 0.6


def soft_coverage(coverage: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """How much of each pixel is painted, ``[n,H,W]`` in 0..1, from latent coverage ``[n,h,w]``.

    A latent pixel is painted when its coverage is above 0. The painted/unpainted map is
    interpolated bilinearly to pixel resolution (its half level runs halfway between painted and
    unpainted latent pixels, where the decoder's change fades out), smoothed by a Gaussian of a
    quarter latent pixel (which rounds the corners off, so a disk stroke shows as a round blob,
    not as a staircase of 8-pixel blocks), and mapped through a smoothstep between
    :data:`FEATHER_LOW` and :data:`FEATHER_HIGH`: feathered edges a few pixels wide. Inside
    painted areas the mask is exactly 1 and far from them exactly 0, so a one-latent-pixel gap
    between strokes still leaves a white vein, as in the author's white-canvas videos.
    """
    if coverage.dim() != 3:
        raise ValueError(f"soft_coverage: coverage must be [n,h,w], got {tuple(coverage.shape)}")
    height, width = int(size[0]), int(size[1])
    painted = (coverage > 0).to(torch.float32)[:, None]
    field = F.interpolate(painted, size=(height, width), mode="bilinear", align_corners=False)
    scale = max(height / coverage.shape[1], width / coverage.shape[2])
    if scale > 1:
        field = _gaussian_blur(field, scale / 4.0)
    ramp = ((field - FEATHER_LOW) / (FEATHER_HIGH - FEATHER_LOW)).clamp(0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp))[:, 0]


def composite_white(images: torch.Tensor, coverage: torch.Tensor, *, upsample: str = "soft") -> torch.Tensor:
    """Show never-painted areas as paper white: ``lerp(1, images, M)``.

    ``upsample="soft"`` (default): M is :func:`soft_coverage`, round feathered blobs at pixel
    resolution. ``"nearest"``: M is coverage > 0 in blocks of latent pixels (hard edges).
    Either way untouched areas are exactly 1.0 and fully painted ones exactly the decoded pixels.
    """
    if images.dim() != 4 or coverage.dim() != 3 or images.shape[0] != coverage.shape[0]:
        raise ValueError(
            f"composite_white: images {tuple(images.shape)} and coverage {tuple(coverage.shape)} must be "
            "[n,H,W,3] and [n,h,w] with the same n"
        )
    if upsample not in ("soft", "nearest"):
        raise ValueError(f"composite_white: upsample must be 'soft' or 'nearest', got {upsample!r}")
    size = tuple(images.shape[1:3])
    coverage = coverage.to(images.device)
    if upsample == "nearest":
        painted = (coverage > 0).to(torch.float32)[:, None]
        mask = F.interpolate(painted, size=size, mode="nearest")[:, 0]
    else:
        mask = soft_coverage(coverage, size)
    white = torch.ones((), dtype=images.dtype, device=images.device)
    # lerp is exact at both ends: weight 0 gives the white, weight 1 the decoded pixel bit for bit.
    return torch.lerp(white.expand_as(images), images, mask[..., None].to(images.dtype))


def hue_colours(num_channels: int, device=None) -> torch.Tensor:
    """One fully saturated colour per channel, ``[num_channels, 3]``, hue = channel / num_channels."""
    hue = torch.arange(num_channels, dtype=torch.float32, device=device) / max(num_channels, 1)
    # The branch-free HSV->RGB form with s = v = 1: f(n) = 1 - max(0, min(k, 4 - k, 1)), k = (n + 6h) mod 6.
    n = torch.tensor([5.0, 3.0, 1.0], device=device)
    k = torch.remainder(n + 6.0 * hue[:, None], 6.0)
    return 1.0 - torch.clamp(torch.minimum(torch.minimum(k, 4.0 - k), torch.ones_like(k)), min=0.0)


def render_stroke_map(
    coverage: torch.Tensor,
    strokes: torch.Tensor,
    channels: torch.Tensor,
    num_channels: int,
    size: tuple[int, int] | None = None,
    *,
    upsample: str = "soft",
) -> torch.Tensor:
    """Draw the stroke map: ``[n,H,W,3]`` (``size`` = (H, W), default 8x the latent size).

    Black background; the cumulative coverage as grey, normalised to its maximum in each frame
    (so every frame with any coverage has a pixel at 1.0, as in the author's map video); this
    frame's strokes blended over the grey by their strength in the channel's colour (hue =
    channel / num_channels), white where several channels were painted at once (-2).
    ``upsample="soft"`` (default) draws it at latent resolution, interpolates bilinearly and
    smooths by a quarter latent pixel, as :func:`soft_coverage` does: strokes show as soft round
    blobs like the disks of the author's map video. ``"nearest"``: one latent pixel is one
    block, as the painter sees it.
    """
    if coverage.dim() != 3 or strokes.shape != coverage.shape or channels.shape != coverage.shape:
        raise ValueError(
            f"render_stroke_map: coverage {tuple(coverage.shape)}, strokes {tuple(strokes.shape)} and channels "
            f"{tuple(channels.shape)} must all be [n,h,w]"
        )
    if num_channels < 1:
        raise ValueError(f"render_stroke_map: num_channels must be >= 1, got {num_channels}")
    if upsample not in ("soft", "nearest"):
        raise ValueError(f"render_stroke_map: upsample must be 'soft' or 'nearest', got {upsample!r}")
    device = coverage.device
    channels = channels.to(device=device, dtype=torch.int64)
    if channels.numel() and (channels.max() >= num_channels or channels.min() < -2):
        raise ValueError(
            f"render_stroke_map: channel ids must be -2, -1 or 0..{num_channels - 1}, got "
            f"{int(channels.min())}..{int(channels.max())}; pass the latent's channel count as num_channels"
        )
    if size is None:
        size = (coverage.shape[1] * 8, coverage.shape[2] * 8)
    coverage = coverage.to(torch.float32)
    peak = coverage.flatten(1).amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny)
    grey = (coverage / peak[:, None, None]).clamp(0.0, 1.0)[..., None].expand(*coverage.shape, 3)
    palette = torch.cat([hue_colours(num_channels, device), torch.ones(1, 3, device=device)])
    # Index -2 maps to the appended white row; -1 is masked out by a zero strength below.
    colour = palette[torch.where(channels == -2, num_channels, channels.clamp(min=0))]
    strength = torch.where(channels == -1, 0.0, strokes.to(device=device, dtype=torch.float32).clamp(0.0, 1.0))
    rgb = torch.lerp(grey, colour, strength[..., None]).permute(0, 3, 1, 2)
    if upsample == "nearest":
        rgb = F.interpolate(rgb, size=tuple(size), mode="nearest")
    else:
        rgb = F.interpolate(rgb, size=tuple(size), mode="bilinear", align_corners=False)
        scale = max(size[0] / coverage.shape[1], size[1] / coverage.shape[2])
        if scale > 1:
            rgb = _gaussian_blur(rgb, scale / 4.0).clamp(0.0, 1.0)
    return rgb.permute(0, 2, 3, 1).contiguous()


__all__ = ["StrokeMaps", "composite_white", "coverage_mask", "hue_colours", "render_stroke_map", "soft_coverage"]
