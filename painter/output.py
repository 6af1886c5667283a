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
from .timeline import Painting

# Refuse before allocating: 100k frames is over half an hour at 50 fps, far beyond any painting.
MAX_ASSEMBLED_FRAMES = 100_000

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


def composite_white(images: torch.Tensor, coverage: torch.Tensor, *, upsample: str = "bilinear") -> torch.Tensor:
    """Show never-painted areas as paper white: ``where(M, images, 1)`` with M = coverage > 0.

    The hard mask keeps the untouched areas exactly 1.0 and the painted ones exactly the decoded
    pixels. ``upsample="bilinear"`` interpolates the binary mask and thresholds it at one half:
    straight edges land where nearest would put them (so a one-latent-pixel gap still leaves a
    full-width white vein) but corners round off, which matches the blob edges of the author's
    white-canvas videos better than 8-pixel blocks. ``"nearest"`` gives the blocks.
    """
    if images.dim() != 4 or coverage.dim() != 3 or images.shape[0] != coverage.shape[0]:
        raise ValueError(
            f"composite_white: images {tuple(images.shape)} and coverage {tuple(coverage.shape)} must be "
            "[n,H,W,3] and [n,h,w] with the same n"
        )
    if upsample not in ("bilinear", "nearest"):
        raise ValueError(f"composite_white: upsample must be 'bilinear' or 'nearest', got {upsample!r}")
    size = tuple(images.shape[1:3])
    painted = (coverage.to(images.device) > 0).to(torch.float32)[:, None]
    if upsample == "nearest":
        mask = F.interpolate(painted, size=size, mode="nearest") > 0.5
    else:
        mask = F.interpolate(painted, size=size, mode="bilinear", align_corners=False) > 0.5
    white = torch.ones((), dtype=images.dtype, device=images.device)
    return torch.where(mask[:, 0, :, :, None], images, white)


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
) -> torch.Tensor:
    """Draw the stroke map: ``[n,H,W,3]`` (``size`` = (H, W), default 8x the latent size).

    Black background; the cumulative coverage as grey, normalised to its maximum in each frame
    (so every frame with any coverage has a pixel at 1.0, as in the author's map video); this
    frame's strokes blended over the grey by their strength in the channel's colour (hue =
    channel / num_channels), white where several channels were painted at once (-2).
    Upsampling is nearest: one latent pixel is one block, as the painter sees it.
    """
    if coverage.dim() != 3 or strokes.shape != coverage.shape or channels.shape != coverage.shape:
        raise ValueError(
            f"render_stroke_map: coverage {tuple(coverage.shape)}, strokes {tuple(strokes.shape)} and channels "
            f"{tuple(channels.shape)} must all be [n,h,w]"
        )
    if num_channels < 1:
        raise ValueError(f"render_stroke_map: num_channels must be >= 1, got {num_channels}")
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
    rgb = torch.lerp(grey, colour, strength[..., None])
    rgb = F.interpolate(rgb.permute(0, 3, 1, 2), size=tuple(size), mode="nearest")
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

    decode:       ``decode(samples [n,C,h,w]) -> [n,H,W,3]`` float 0..1 (a ComfyUI VAE's ``decode``,
                  a TAESD's ``decode``).
    frames:       latents ``[N,C,h,w]`` or a :class:`Painting` (which also supplies the maps).
    chunk_size:   latents per decoder call. The output is allocated once, after the first chunk
                  tells the image size, so peak memory is the output plus one decoded chunk.
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
    if not isinstance(latents, torch.Tensor) or latents.dim() != 4:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"{where}: frames must be latents [N,C,h,w] or a Painting, got {shape}")
    total = latents.shape[0]
    if total == 0 or latents.numel() == 0:
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

    out = None
    size = None
    width = 0
    last = latents[-1]
    with torch.no_grad():
        for start, stop, images in _decoded_chunks(decode, latents, chunk_size, incremental, incremental_stats, where):
            chunk = latents[start:stop]
            images = _check_decoded(images, stop - start, size, where)
            if out is None:
                size = tuple(images.shape[1:3])
                width = size[1]
                out = torch.empty(
                    (total, size[0], width * (2 if maps is not None else 1), 3), dtype=torch.float32, device=images.device
                )
            if white_canvas:
                chunk_coverage = coverage[start:stop].to(device=images.device, dtype=torch.float32, copy=True)
                finished = (chunk == last).flatten(1).all(dim=1).to(images.device)
                chunk_coverage[finished] = 1.0
                images = composite_white(images, chunk_coverage)
            out[start:stop, :, :width] = images
            del images, chunk
            if maps is not None:
                out[start:stop, :, width:] = render_stroke_map(
                    maps.coverage[start:stop].to(out.device),
                    maps.strokes[start:stop].to(out.device),
                    maps.channels[start:stop].to(out.device),
                    maps.num_channels,
                    size=size,
                )
            if progress is not None:
                progress(stop, total)
    return out


def _decoded_chunks(decode, latents: torch.Tensor, chunk_size: int, incremental, stats, where: str):
    """``(start, stop, images)`` for consecutive runs of frames: ``decode`` on chunks of
    ``chunk_size``, or, with ``incremental`` options and a :class:`StagedDecoder`, the verified
    spans of :func:`~.incremental.decode_incremental`."""
    if incremental is not None:
        if not isinstance(decode, StagedDecoder):
            raise ValueError(f"{where}: incremental decoding needs a StagedDecoder, got {type(decode).__name__}")
        start = 0
        for images in decode_incremental(decode, latents, incremental, stats=stats, where=where):
            yield start, start + images.shape[0], images
            start += images.shape[0]
        return
    for start in range(0, latents.shape[0], chunk_size):
        stop = min(latents.shape[0], start + chunk_size)
        # Contiguous chunks: CPU kernels pick algorithms by memory layout, and the last bits of a
        # decode then depend on it; this way a frame decodes as its latent alone would.
        yield start, stop, decode(latents[start:stop].contiguous())


def _whole(value, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: {name} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{where}: {name} must be >= 0, got {value}; use 0 for no hold")
    return value


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
    hold_first = _whole(hold_first, "hold_first", where)
    hold_last = _whole(hold_last, "hold_last", where)
    frame_shape = None
    for index, seq in enumerate(sequences):
        if not isinstance(seq, torch.Tensor) or seq.dim() != 4:
            shape = tuple(seq.shape) if isinstance(seq, torch.Tensor) else type(seq).__name__
            raise ValueError(f"{where}: sequence {index + 1} must be an IMAGE [N,H,W,C], got {shape}")
        if seq.shape[0] == 0:
            raise ValueError(f"{where}: sequence {index + 1} has no frames; remove it or decode it first")
        if frame_shape is None:
            frame_shape = tuple(seq.shape[1:])
        elif tuple(seq.shape[1:]) != frame_shape:
            raise ValueError(
                f"{where}: sequence {index + 1} has frames of {tuple(seq.shape[1:])} but sequence 1 has {frame_shape}; "
                "decode all sequences at the same size (and all with or all without stroke maps)"
            )

    # Frames kept from each sequence, with its first frame dropped when it repeats the join.
    first_kept = [0] * len(sequences)
    for index in range(1, len(sequences)):
        previous = sequences[index - 1][-1]
        if torch.equal(previous, sequences[index][0].to(previous.device)):
            first_kept[index] = 1
    lengths = [seq.shape[0] - skip for seq, skip in zip(sequences, first_kept)]
    length = sum(lengths)

    back = max(length - 2, 0) if pingpong else 0
    count = length + hold_first + hold_last + back
    if count > MAX_ASSEMBLED_FRAMES:
        raise ValueError(
            f"{where}: that makes {count} frames, more than {MAX_ASSEMBLED_FRAMES}; lower the holds or use fewer/shorter sequences"
        )

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
    return frames / float(seconds)


__all__ = [
    "MAX_ASSEMBLED_FRAMES",
    "StrokeMaps",
    "assemble",
    "composite_white",
    "decode_frames",
    "fps_for_duration",
    "hue_colours",
    "render_stroke_map",
]
