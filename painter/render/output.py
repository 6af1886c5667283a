"""From painted latents to the frames a user saves: bounded decoding, white canvas, stroke maps,
holds, ping-pong and frame rate.

Images here are ComfyUI ``IMAGE`` tensors, ``[N,H,W,3]`` float in 0..1. Latent-resolution maps
(coverage, strokes, channels) are ``[N,h,w]`` and are upsampled to the decoded size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .incremental import IncrementalOptions, IncrementalStats, StagedDecoder, decode_incremental
from ..engine.timeline import Painting

# Refuse before allocating: 100k frames is over half an hour at 50 fps, far beyond any painting.
MAX_ASSEMBLED_FRAMES = 100_000
# Refuse before allocating an IMAGE batch larger than this (1,000 frames of 1536x1536 float32 RGB
# are 26 GiB); past it the host would fail or swap, not finish.
MAX_IMAGE_BYTES = 32 * 1024**3
# Animated WEBP counts frame durations in whole milliseconds.
MAX_FPS = 1000.0

Decoder = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]


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
    def of(cls, source, where: str = "stroke map") -> "StrokeMaps":
        """The maps of a :class:`Painting` (or ``source`` itself when it already is maps)."""
        if isinstance(source, StrokeMaps):
            return source
        if isinstance(source, Painting):
            return cls(source.coverage, source.strokes, source.channels, int(source.frames.shape[1]))
        raise ValueError(f"{where}: expected a Painting or StrokeMaps, got {type(source).__name__}")


def coverage_mask(coverage: torch.Tensor) -> torch.Tensor:
    """Coverage as a MASK in 0..1: divided by its largest value over all frames, so 0 still
    means never painted and growth between frames stays visible."""
    peak = coverage.max()
    return coverage / peak if peak > 0 else torch.zeros_like(coverage)


def _check_map(tensor, name: str, frames: int, spatial: tuple[int, int], where: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{where}: {name} must be a tensor [N,h,w], got {type(tensor).__name__}")
    if tuple(tensor.shape) != (frames, *spatial):
        raise ValueError(
            f"{where}: {name} has shape {tuple(tensor.shape)} but the frames need {(frames, *spatial)} "
            "(one latent-resolution map per frame); pass the maps of the same painting"
        )
    return tensor


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


def _check_decoded(images, count: int, size: tuple[int, int] | None, where: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{where}: the decoder returned {type(images).__name__}, not an IMAGE tensor")
    if images.dim() != 4 or images.shape[0] != count or images.shape[-1] != 3:
        raise ValueError(
            f"{where}: the decoder turned {count} latents into shape {tuple(images.shape)}, expected "
            f"[{count},H,W,3]; use an image VAE (video VAEs are not supported) that matches the latents"
        )
    if size is not None and tuple(images.shape[1:3]) != size:
        raise ValueError(f"{where}: the decoder changed image size between chunks ({size} then {tuple(images.shape[1:3])})")
    return images


def decode_frames(
    decode: Decoder,
    frames: torch.Tensor | Painting,
    chunk_size: int = 16,
    *,
    coverage: torch.Tensor | None = None,
    white_canvas: bool = False,
    stroke_map=False,
    progress: Progress | None = None,
    incremental: IncrementalOptions | None = None,
    incremental_stats: IncrementalStats | None = None,
    where: str = "decode frames",
) -> torch.Tensor:
    """Decode painted latents into one ``IMAGE`` ``[N,H,W,3]`` (``[N,H,2W,3]`` with the stroke map).

    The output is allocated once, after the first chunk tells the image size, so peak memory is
    the output plus one decoded chunk. Arguments as for :func:`decoded_chunks`.
    """
    chunks = decoded_chunks(
        decode, frames, chunk_size, coverage=coverage, white_canvas=white_canvas, stroke_map=stroke_map,
        progress=progress, incremental=incremental, incremental_stats=incremental_stats, where=where,
    )
    out = None
    start = 0
    for images in chunks:
        if out is None:
            check_image_budget(chunks.total, tuple(images.shape[1:]), 4, where, "decode fewer frames or smaller latents")
            out = torch.empty((chunks.total, *images.shape[1:]), dtype=torch.float32, device=images.device)
        out[start : start + images.shape[0]] = images
        start += images.shape[0]
        del images
    return out


class DecodedChunks:
    """An iterator over the decoded ``IMAGE`` chunks of painted latents, in frame order.

    ``total`` is the number of frames it yields in all. Built (and its inputs checked) by
    :func:`decoded_chunks`; every consumer (:func:`decode_frames`, the streaming render in
    ``painter/render/video.py``) decodes through it, so another decoding strategy plugs in here.
    """

    def __init__(self, chunks, total: int):
        self._chunks = chunks
        self.total = total

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()


def decoded_chunks(
    decode: Decoder,
    frames,
    chunk_size: int = 16,
    *,
    coverage: torch.Tensor | None = None,
    white_canvas: bool = False,
    stroke_map=False,
    progress: Progress | None = None,
    incremental: IncrementalOptions | None = None,
    incremental_stats: IncrementalStats | None = None,
    where: str = "decode frames",
) -> DecodedChunks:
    """Check the inputs now, then decode lazily: each ``next()`` decodes one chunk ``[n,H,W,3]``
    (``[n,H,2W,3]`` with the stroke map).

    decode:       ``decode(samples [n,C,h,w]) -> [n,H,W,3]`` float 0..1 (a ComfyUI VAE's ``decode``,
                  a TAESD's ``decode``).
    frames:       latents ``[N,C,h,w]`` or a :class:`Painting` (which also supplies the maps). Only
                  ``shape``, ``dim()`` and slicing are used, so a lazy stand-in that makes latents
                  chunk by chunk works too.
    chunk_size:   latents per decoder call.
    coverage:     ``[N,h,w]`` for the white canvas; defaults to the painting's/stroke maps'.
    white_canvas: show never-painted areas white (:func:`composite_white`). Frames whose latent
                  equals the last frame bit for bit (the final frame and any hold of it) are shown
                  unmasked, so the animation ends exactly on the decoded final latent.
    stroke_map:   False; True (needs a Painting); or maps for :meth:`StrokeMaps.of`. The map is
                  placed to the right of each frame.
    progress:     ``progress(done, total)`` after every chunk; raise in it to interrupt (nothing is
                  returned then).
    incremental:  options for :func:`~.incremental.decode_incremental` (``decode`` must then be a
                  :class:`~.incremental.StagedDecoder`): each frame is decoded where it changed and
                  pasted into the previous one, within ``incremental.min_psnr`` of its full decode;
                  chunks are then its verified spans. ``incremental_stats`` records what it did.
    """
    painting = frames if isinstance(frames, Painting) else None
    latents = painting.frames if painting is not None else frames
    if not hasattr(latents, "shape") or not hasattr(latents, "dim") or latents.dim() != 4:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"{where}: frames must be latents [N,C,h,w] or a Painting, got {shape}")
    total = int(latents.shape[0])
    if total == 0 or math.prod(latents.shape) == 0:
        raise ValueError(f"{where}: frames is empty (shape {tuple(latents.shape)}); paint at least one frame")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be a whole number >= 1, got {chunk_size!r}; try 16")
    spatial = tuple(latents.shape[2:])

    maps = None
    if stroke_map is True:
        if painting is None:
            raise ValueError(f"{where}: stroke_map=True needs a Painting; pass the painting or its maps instead")
        maps = StrokeMaps.of(painting, where=where)
    elif stroke_map is not False and stroke_map is not None:
        maps = StrokeMaps.of(stroke_map, where=where)
    if maps is not None:
        _check_map(maps.coverage, "stroke map coverage", total, spatial, where)
        _check_map(maps.strokes, "stroke map strokes", total, spatial, where)
        _check_map(maps.channels, "stroke map channels", total, spatial, where)

    if white_canvas:
        if coverage is None:
            coverage = maps.coverage if maps is not None else painting.coverage if painting is not None else None
        if coverage is None:
            raise ValueError(f"{where}: white_canvas needs the coverage maps [N,h,w]; pass coverage= or a Painting")
    if coverage is not None:
        _check_map(coverage, "coverage", total, spatial, where)

    def chunks():
        size = None
        last = latents[total - 1]
        with torch.no_grad():
            for start, stop, images in _decoded_chunks(decode, latents, chunk_size, incremental, incremental_stats, where):
                chunk = latents[start:stop]
                images = _check_decoded(images, stop - start, size, where)
                size = tuple(images.shape[1:3])
                if white_canvas:
                    chunk_coverage = coverage[start:stop].to(device=images.device, dtype=torch.float32, copy=True)
                    finished = (chunk == last.to(chunk.device)).flatten(1).all(dim=1).to(images.device)
                    chunk_coverage[finished] = 1.0
                    images = composite_white(images, chunk_coverage)
                del chunk
                if maps is not None:
                    drawn = render_stroke_map(
                        maps.coverage[start:stop].to(images.device),
                        maps.strokes[start:stop].to(images.device),
                        maps.channels[start:stop].to(images.device),
                        maps.num_channels,
                        size=size,
                    )
                    images = torch.cat([images.to(torch.float32), drawn], dim=2)
                    del drawn
                if progress is not None:
                    progress(stop, total)
                yield images
                del images

    return DecodedChunks(chunks(), total)


def check_image_budget(count: int, frame_shape: tuple[int, ...], bytes_per_value: int, where: str, fix: str) -> None:
    """Refuse an IMAGE batch of ``count`` frames over :data:`MAX_IMAGE_BYTES` before it is allocated."""
    size = count * math.prod(frame_shape) * bytes_per_value
    if size > MAX_IMAGE_BYTES:
        raise ValueError(
            f"{where}: {count} frames of {'x'.join(map(str, frame_shape))} need {size / 1024**3:.1f} GiB, "
            f"more than {MAX_IMAGE_BYTES // 1024**3} GiB; {fix}"
        )


def _decoded_chunks(decode, latents: torch.Tensor, chunk_size: int, incremental, stats, where: str):
    """``(start, stop, images)`` for consecutive runs of frames: ``decode`` on chunks of
    ``chunk_size``, or, with ``incremental`` options and a :class:`StagedDecoder`, the verified
    spans of :func:`~.incremental.decode_incremental`."""
    if incremental is not None:
        if not isinstance(decode, StagedDecoder):
            raise ValueError(f"{where}: incremental decoding needs a StagedDecoder, got {type(decode).__name__}")
        # Latents go in chunk by chunk, so a lazy stand-in for the frames stays lazy.
        pieces = (latents[begin : begin + chunk_size] for begin in range(0, latents.shape[0], chunk_size))
        start = 0
        for images in decode_incremental(decode, pieces, incremental, stats=stats, where=where):
            yield start, start + images.shape[0], images
            start += images.shape[0]
        return
    for start in range(0, latents.shape[0], chunk_size):
        stop = min(latents.shape[0], start + chunk_size)
        # Contiguous chunks: CPU kernels pick algorithms by memory layout, and the last bits of a
        # decode then depend on it; this way a frame decodes as its latent alone would.
        yield start, stop, decode(latents[start:stop].contiguous())


def hold_count(value, name: str, where: str) -> int:
    """A hold (extra copies of a frame): a whole number >= 0, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{where}: {name} must be >= 0, got {value}; use 0 for no hold")
    return value


def joined_frame_shape(images, number: int, frame_shape: tuple[int, ...] | None, where: str,
                       noun: str = "sequence", rgb: bool = False) -> tuple[int, ...]:
    """The frame shape ``(H, W, C)`` of the IMAGE batch ``images``, the ``number``-th of several
    played one after another; refused when it is not an IMAGE (with ``rgb``: not 3 channels, what
    the video encoders take) or differs from ``frame_shape`` (the first one's; None for the first)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or (rgb and images.shape[-1] != 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{where}: {noun} {number} must be an IMAGE [N,H,W,{3 if rgb else 'C'}], got {shape}")
    shape = tuple(images.shape[1:])
    if frame_shape is not None and shape != frame_shape:
        raise ValueError(
            f"{where}: {noun} {number} has frames of {shape} but {noun} 1 has {frame_shape}; every {noun} must be "
            "decoded at the same size (the same latent size, and all or none with a stroke map beside it)"
        )
    return shape


def repeats_join(previous_last: torch.Tensor, first: torch.Tensor) -> bool:
    """Whether a sequence starts on the exact frame the previous one ended on (a transition from a
    painting's final image): that frame is then played once."""
    return torch.equal(previous_last, first.to(previous_last.device))


def assemble(
    sequences,
    *,
    hold_first: int = 0,
    hold_last: int = 0,
    pingpong: bool = False,
    where: str = "assemble frames",
) -> torch.Tensor:
    """Join IMAGE sequences into one animation.

    Sequences are concatenated in order; where a sequence starts on the exact frame the previous
    one ended on (a painting followed by a transition from its final image), that frame is kept
    once. The first frame is then shown ``1 + hold_first`` times and the last ``1 + hold_last``
    times. ``pingpong`` appends the way back without the turning frames (a f0..fn sequence plays
    f0..fn, f(n-1)..f1), so looping it never shows a frame twice in a row beyond the holds.
    The frame count is checked against :data:`MAX_ASSEMBLED_FRAMES` before anything is allocated.
    """
    if isinstance(sequences, torch.Tensor):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        raise ValueError(f"{where}: no sequences given; pass at least one IMAGE batch")
    hold_first = hold_count(hold_first, "hold_first", where)
    hold_last = hold_count(hold_last, "hold_last", where)
    frame_shape = None
    for index, seq in enumerate(sequences):
        frame_shape = joined_frame_shape(seq, index + 1, frame_shape, where)
        if seq.shape[0] == 0:
            raise ValueError(f"{where}: sequence {index + 1} has no frames; remove it or decode it first")

    # Frames kept from each sequence, with its first frame dropped when it repeats the join.
    first_kept = [0] + [int(repeats_join(before[-1], after[0])) for before, after in zip(sequences, sequences[1:])]
    lengths = [seq.shape[0] - skip for seq, skip in zip(sequences, first_kept)]
    length = sum(lengths)

    back = max(length - 2, 0) if pingpong else 0
    count = length + hold_first + hold_last + back
    if count > MAX_ASSEMBLED_FRAMES:
        raise ValueError(
            f"{where}: that makes {count} frames, more than {MAX_ASSEMBLED_FRAMES}; lower the holds or use fewer/shorter sequences"
        )
    check_image_budget(count, frame_shape, sequences[0].element_size(), where, "lower the holds or use fewer/shorter sequences")

    # The output as indices into the virtual concatenation, then copied run by run.
    if length == 1:
        order = torch.zeros(1 + hold_first + hold_last, dtype=torch.int64)
    else:
        order = torch.cat(
            [
                torch.zeros(1 + hold_first, dtype=torch.int64),
                torch.arange(1, length - 1),
                torch.full((1 + hold_last,), length - 1, dtype=torch.int64),
                torch.arange(length - 2, 0, -1) if pingpong else torch.empty(0, dtype=torch.int64),
            ]
        )
    ends = torch.tensor(lengths).cumsum(0)
    owner = torch.searchsorted(ends, order, right=True)
    local = order - (ends - torch.tensor(lengths))[owner] + torch.tensor(first_kept)[owner]

    reference = sequences[0]
    out = torch.empty((count, *frame_shape), dtype=reference.dtype, device=reference.device)
    runs, counts = torch.unique_consecutive(owner, return_counts=True)
    position = 0
    for seq_index, run in zip(runs.tolist(), counts.tolist()):
        seq = sequences[seq_index]
        index = local[position : position + run]
        target = out[position : position + run]
        if seq.device == out.device and seq.dtype == out.dtype:
            torch.index_select(seq, 0, index.to(seq.device), out=target)
        else:
            target.copy_(seq.index_select(0, index.to(seq.device)))
        position += run
    return out


def fps_for_duration(frames: int, seconds: float) -> float:
    """The frame rate that plays ``frames`` frames in ``seconds`` (the author's demos fit 20 s)."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"fps_for_duration: frames must be a whole number >= 1, got {frames!r}")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"fps_for_duration: seconds must be a finite number > 0, got {seconds!r}")
    rate = frames / float(seconds)
    if rate > MAX_FPS:
        raise ValueError(
            f"fps_for_duration: {frames} frames in {seconds:g} s is {rate:.3g} fps, more than {MAX_FPS:g}; give a longer duration"
        )
    return rate


__all__ = [
    "MAX_ASSEMBLED_FRAMES",
    "MAX_FPS",
    "MAX_IMAGE_BYTES",
    "StrokeMaps",
    "assemble",
    "joined_frame_shape",
    "repeats_join",
    "check_image_budget",
    "composite_white",
    "DecodedChunks",
    "decode_frames",
    "decoded_chunks",
    "fps_for_duration",
    "hold_count",
    "hue_colours",
    "render_stroke_map",
    "soft_coverage",
]
