"""How good an animation is, measured on decoded frames (ARCHITECTURE.md "Targets"), and the baselines.

Images are ``IMAGE`` tensors ``[N,H,W,3]``: float 0..1, or uint8 0..255 (read as value / 255, so
frames read from a video file measure on the same scale). Per-frame work runs in chunks of
frames so that measuring a long animation needs little memory beyond the animation itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..engine.interpolate import lerp_latents, slerp_latents  # noqa: F401 - the baselines measured here
from ..engine.plan import Plan
from ..engine.timeline import Painting

CHUNK = 16
# Rec. 709 luma weights: the primaries of sRGB, which is what decoded images are.
LUMA = (0.2126, 0.7152, 0.0722)
# Below this |cos| the slerp angle is well conditioned; above it slerp is lerp to float precision.


def _check_images(images, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"metrics: {name} must be an IMAGE [N,H,W,C], got {shape}")
    if images.shape[0] == 0:
        raise ValueError(f"metrics: {name} has no frames; give at least one")
    return images


def _as_float(chunk: torch.Tensor) -> torch.Tensor:
    if chunk.dtype == torch.uint8:
        return chunk.to(torch.float32) / 255.0
    return chunk.to(torch.float32)


def frame_changes(images: torch.Tensor) -> torch.Tensor:
    """``[N-1]``: mean |frame[k+1] - frame[k]| over pixels and colour channels."""
    images = _check_images(images)
    count = images.shape[0]
    changes = torch.empty(max(count - 1, 0), dtype=torch.float32, device=images.device)
    for start in range(0, count - 1, CHUNK):
        stop = min(count, start + CHUNK + 1)
        chunk = _as_float(images[start:stop])
        changes[start : stop - 1] = (chunk[1:] - chunk[:-1]).abs().flatten(1).mean(dim=1)
    return changes


def pacing_from_changes(changes: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of the change over time to an even pace (see :func:`pacing`)."""
    changes = torch.as_tensor(changes, dtype=torch.float32).flatten()
    if changes.numel() == 0:
        return 0.0
    if (changes < 0).any() or not torch.isfinite(changes).all():
        raise ValueError("metrics: frame changes must be finite and >= 0")
    total = changes.sum()
    if total <= 0:
        return 0.0
    steps = changes.numel()
    done = changes.cumsum(0) / total
    elapsed = torch.arange(1, steps + 1, dtype=torch.float32, device=changes.device) / steps
    return float((done - elapsed).abs().max())


def pacing(images: torch.Tensor) -> float:
    """How unevenly the change is spread over the animation: 0 is perfectly even.

    With d_k = :func:`frame_changes` (k = 1..M, M = N - 1 transitions),
    ``pacing = max_k | sum_{i<=k} d_i / sum_i d_i  -  k / M |``: the largest gap between the
    share of all change done after k transitions and the share of transitions elapsed. It lies
    in [0, 1 - 1/M]; the maximum is reached when everything changes in the first transition.
    Animations with no change at all (one frame, or all frames equal) have nothing to pace and
    score 0. Trim the holds first (:func:`active_range`): a hold is a stall by this measure.
    """
    return pacing_from_changes(frame_changes(images))


def active_range_from_changes(changes: torch.Tensor, tol: float = 0.0) -> tuple[int, int]:
    """``(start, stop)`` of the frames between the first and the last change above ``tol``."""
    changes = torch.as_tensor(changes).flatten()
    active = torch.nonzero(changes > tol).flatten()
    if active.numel() == 0:
        return 0, 1
    return int(active[0]), int(active[-1]) + 2


def active_range(images: torch.Tensor, tol: float = 0.0) -> tuple[int, int]:
    """``(start, stop)`` such that ``images[start:stop]`` is the active part of the animation.

    Leading and trailing frames that differ from their neighbour by a mean |change| of at most
    ``tol`` (holds) are dropped; the frames on both sides of the first and last real change are
    kept. Pauses in the middle stay: they are part of the pacing. With no change at all the
    active part is the first frame, ``(0, 1)``. Exact holds need ``tol = 0``; frames read back
    from a lossy video need a small tolerance such as ``0.5 / 255``.
    """
    return active_range_from_changes(frame_changes(images), tol)


def _luminance(chunk: torch.Tensor) -> torch.Tensor:
    chunk = _as_float(chunk)
    if chunk.shape[-1] == 3:
        weights = torch.tensor(LUMA, dtype=torch.float32, device=chunk.device)
        return chunk @ weights
    return chunk.mean(dim=-1)


def sharpness(images: torch.Tensor) -> torch.Tensor:
    """``[N]``: mean |Laplacian| of each frame's luminance (Rec. 709), in 0..1 image units.

    The 4-neighbour Laplacian is taken over the interior only (no padding), so the image border
    adds no fake edge.
    """
    images = _check_images(images)
    if images.shape[1] < 3 or images.shape[2] < 3:
        raise ValueError(f"metrics: sharpness needs frames of at least 3x3 pixels, got {tuple(images.shape[1:3])}")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=images.device)[None, None]
    result = torch.empty(images.shape[0], dtype=torch.float32, device=images.device)
    for start in range(0, images.shape[0], CHUNK):
        luma = _luminance(images[start : start + CHUNK])[:, None]
        result[start : start + CHUNK] = F.conv2d(luma, kernel).abs().flatten(1).mean(dim=1)
    return result


def crispness_from_sharpness(values: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Crispness from per-frame sharpness (see :func:`crispness`)."""
    values = torch.as_tensor(values, dtype=torch.float32).flatten()
    count = values.numel()
    if count == 0:
        raise ValueError("metrics: crispness needs at least one frame")
    if count == 1:
        return torch.ones(1, dtype=torch.float32, device=values.device), 1.0
    position = torch.arange(count, dtype=torch.float32, device=values.device) / (count - 1)
    reference = torch.lerp(values[0].expand(count), values[-1].expand(count), position)
    ratio = torch.where(reference > 0, values / reference.clamp(min=torch.finfo(torch.float32).tiny), 1.0)
    # The endpoints are their own reference; pin them so rounding in lerp cannot move them.
    ratio[0] = 1.0
    ratio[-1] = 1.0
    inner = ratio[1:-1]
    return ratio, float(inner.min()) if inner.numel() else 1.0


def crispness(images: torch.Tensor) -> tuple[torch.Tensor, float]:
    """How sharp the in-between frames stay: ``(ratio [N], min over the in-between frames)``.

    ``ratio[k] = sharpness[k] / ref[k]`` with ``ref[k]`` the linear interpolation of the first and
    last frame's sharpness at position ``k / (N-1)``: a transition whose sharpness moves evenly
    from one endpoint's to the other's scores 1 everywhere, blur dips below 1. Endpoints score 1;
    frames whose reference is 0 (both endpoints flat) score 1. With fewer than 3 frames there is
    no in-between frame and the minimum is 1.
    """
    return crispness_from_sharpness(sharpness(images))


GHOST_PATCH = 8  # a latent pixel of TAESD-style decoders, in image pixels
GHOST_FLOOR = 0.05  # blocks whose two ends differ less than this (mean |difference|, 0..1) do not count


def ghosting(images: torch.Tensor, patch: int = GHOST_PATCH, floor: float = GHOST_FLOOR) -> torch.Tensor:
    """How much each frame is a cross-fade of the first and the last frame: ``[N]``, 0 = none.

    Over the ``patch`` x ``patch`` blocks where the two ends differ (mean |difference| above
    ``floor``), a frame's block is placed on the line from the first frame's block to the last's
    (least squares: ``t = <F - first, last - first> / |last - first|^2``, clamped to 0..1) and
    scores ``min(t, 1 - t)``: 0 when the block is one of the two ends (painted over or not yet),
    0.5 for a half-and-half cross-fade (a ghost). A frame's value is the median over those
    blocks; a pair whose ends nowhere differ that much scores 0 everywhere."""
    images = _check_images(images)
    count, height, width, colours = images.shape
    if height % patch or width % patch:
        raise ValueError(f"metrics: ghosting needs frames whose sides are multiples of {patch}, got {height}x{width}")

    def blocks(x: torch.Tensor) -> torch.Tensor:  # [N,H,W,C] -> [N, blocks, patch*patch*C]
        x = x.reshape(x.shape[0], height // patch, patch, width // patch, patch, colours)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(x.shape[0], -1, patch * patch * colours)

    first, last = blocks(_as_float(images[:1]))[0], blocks(_as_float(images[-1:]))[0]
    apart = last - first
    counted = apart.abs().mean(-1) > floor
    if not counted.any():
        return torch.zeros(count)
    apart, first = apart[counted], first[counted]
    scores = []
    for start in range(0, count, CHUNK):
        chunk = blocks(_as_float(images[start : start + CHUNK]))[:, counted]
        share = (((chunk - first) * apart).sum(-1) / (apart * apart).sum(-1)).clamp(0, 1)
        scores.append(torch.minimum(share, 1 - share).median(1).values)
    return torch.cat(scores)


# Decoder texture (ARCHITECTURE.md "Targets", look): TAESD-style decoders turn each latent pixel into an
# 8x8 patch, and a half-painted latent shows that as a grid. Its energy sits on the lattice of
# frequencies k/8 cycles per pixel (the 8-px period and its harmonics, in both directions).
GRID_PERIOD = 8
# Only texture counts: the share is taken of the energy above this frequency (cycles per pixel),
# so a frame's broad layout (a blur, a colour field) neither hides nor inflates the grid.
GRID_CUTOFF = 1.0 / 16
# Early frames: the first 40% of the animation (frame 0, the canvas, excluded), at the 90th percentile.
EARLY_SHARE = 0.4
EARLY_QUANTILE = 0.9
# A frame whose texture is fainter than this RMS (a hundredth of a grey level) has none to share
# out: rounding residue of a flat frame would otherwise score as anything.
TEXTURE_FLOOR = 0.01 / 255


def _grid_masks(height: int, width: int, period: int, cutoff: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool ``[H,W]`` masks of the fft2 grid: the bins within one bin of a non-zero multiple of
    ``1/period`` on both axes (the grid's lattice), and the bins above ``cutoff`` (texture)."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.fftfreq(width, device=device)[None, :]
    # Distance in bins to the nearest lattice frequency, per axis. One bin either side holds the
    # whole peak of an exactly periodic grid under the Hann window (its transform has 3 taps).
    near_y = (fy * height - torch.round(fy * period) * height / period).abs() <= 1 + 1e-6
    near_x = (fx * width - torch.round(fx * period) * width / period).abs() <= 1 + 1e-6
    at_dc = (torch.round(fy * period) == 0) & (torch.round(fx * period) == 0)
    texture = (fy**2 + fx**2).sqrt() > cutoff
    return near_y & near_x & ~at_dc & texture, texture


def grid_energy(images: torch.Tensor, period: int = GRID_PERIOD, cutoff: float = GRID_CUTOFF) -> torch.Tensor:
    """``[N]``: how much of each frame's texture is the decoder's ``period``-px grid, 0..1.

    Per frame: the luminance (Rec. 709) less its mean, under a 2-D Hann window (so the frame's
    borders leak no energy onto the lattice), has its power spectrum taken; the share is the
    power on the lattice of the ``period``-px period and its harmonics (``k/period`` cycles per
    pixel on either axis, not both 0, within one frequency bin) over the power of all
    frequencies above ``cutoff``. A frame without texture (RMS below a hundredth of a grey
    level) scores 0. Frames must be at least 4 periods wide.
    """
    images = _check_images(images)
    _, height, width, _ = images.shape
    if min(height, width) < 4 * period:
        raise ValueError(f"metrics: grid_energy needs frames of at least {4 * period}x{4 * period} pixels, "
                         f"got {height}x{width}")
    lattice, texture = _grid_masks(height, width, period, cutoff, images.device)
    window = (torch.hann_window(height, periodic=False, device=images.device)[:, None]
              * torch.hann_window(width, periodic=False, device=images.device)[None, :])
    result = torch.empty(images.shape[0], dtype=torch.float32, device=images.device)
    for start in range(0, images.shape[0], CHUNK):
        luma = _luminance(images[start : start + CHUNK])
        luma = (luma - luma.mean(dim=(1, 2), keepdim=True)) * window
        power = torch.fft.fft2(luma).abs().square()
        total = (power * texture).sum(dim=(1, 2))
        on_grid = (power * lattice).sum(dim=(1, 2))
        # Parseval: the mean square of the texture is total / (H*W)^2.
        textured = total > (TEXTURE_FLOOR * height * width) ** 2
        result[start : start + CHUNK] = torch.where(textured, on_grid / total.clamp_min(1e-30), 0.0)
    return result


def early_grid_ratio_from_energy(energy: torch.Tensor, share: float = EARLY_SHARE,
                                 quantile: float = EARLY_QUANTILE) -> float:
    """The early frames' grid energy relative to the last frame's (see :func:`early_grid_ratio`)."""
    energy = torch.as_tensor(energy, dtype=torch.float32).flatten()
    count = energy.numel()
    if count < 3:
        raise ValueError(f"metrics: the early grid ratio needs at least 3 frames (canvas, one early, last), got {count}")
    if not 0 < share <= 1 or not 0 <= quantile <= 1:
        raise ValueError(f"metrics: share must be in (0, 1] and quantile in [0, 1], got {share} and {quantile}")
    stop = min(count - 1, max(2, math.ceil(share * count)))
    early = torch.quantile(energy[1:stop], quantile)
    final = energy[-1]
    if final <= 0:
        return math.inf if early > 0 else 1.0
    return float(early / final)


def early_grid_ratio(images: torch.Tensor, share: float = EARLY_SHARE, quantile: float = EARLY_QUANTILE) -> float:
    """How much more decoder grid the early frames show than the finished image.

    The ``quantile`` (90th percentile) of :func:`grid_energy` over the frames in the first
    ``share`` (40%) of the animation, frame 0 (the canvas) excluded, divided by the last frame's.
    1 means the early frames carry no more grid than the final image; a half-painted latent on
    a TAESD decoder scores several times that. Trim holds first (:func:`active_range`).
    """
    return early_grid_ratio_from_energy(grid_energy(images), share, quantile)


def x0_preview_latents(plan: Plan) -> torch.Tensor:
    """The baseline animation ``[T,C,H,W]``: one frame per predicted original, ending on the final."""
    return plan.targets


def is_exact(frames, final) -> bool:
    """Whether the last frame is the final latent bit for bit.

    ``frames`` is ``[N,C,H,W]`` or a :class:`Painting`; ``final`` is ``[C,H,W]``, ``[1,C,H,W]`` or a
    :class:`Plan`. The comparison is on the raw bits (an integer view), so -0.0 and 0.0 differ,
    as do two NaNs with different payloads; tensors of different dtypes are never exact.
    """
    if isinstance(frames, Painting):
        frames = frames.frames
    if isinstance(final, Plan):
        final = final.final
    if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[0] == 0:
        raise ValueError("is_exact: frames must be latents [N,C,H,W] with at least one frame")
    if not isinstance(final, torch.Tensor):
        raise ValueError(f"is_exact: final must be a latent tensor, got {type(final).__name__}")
    if final.dim() == 4 and final.shape[0] == 1:
        final = final[0]
    last = frames[-1]
    if tuple(final.shape) != tuple(last.shape):
        raise ValueError(
            f"is_exact: final latent {tuple(final.shape)} and frames {tuple(last.shape)} differ in shape; "
            "compare a painting with the plan it was painted from"
        )
    if final.dtype != last.dtype:
        return False
    bits = {torch.float32: torch.int32, torch.float64: torch.int64, torch.float16: torch.int16, torch.bfloat16: torch.int16}
    view = bits.get(last.dtype)
    if view is None:
        return torch.equal(last, final.to(last.device))
    return torch.equal(last.contiguous().view(view), final.to(last.device).contiguous().view(view))


__all__ = [
    "active_range",
    "active_range_from_changes",
    "crispness",
    "crispness_from_sharpness",
    "early_grid_ratio",
    "early_grid_ratio_from_energy",
    "frame_changes",
    "grid_energy",
    "is_exact",
    "lerp_latents",
    "pacing",
    "pacing_from_changes",
    "sharpness",
    "slerp_latents",
    "x0_preview_latents",
]
