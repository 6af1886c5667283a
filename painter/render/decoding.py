"""The one decoding loop: painted latents in, composited ``IMAGE`` chunks out, by a decode strategy.

Every consumer decodes through :func:`decoded_chunks`: :func:`decode_frames` (one ``IMAGE`` batch for
Decode Frames and the demo) and the streaming sink (Render, the benchmarks). The strategy comes from
the decode mode (:mod:`.strategies`); what it did, and how fast, is filled into an
:class:`~.spans.IncrementalStats`.
"""

from __future__ import annotations

import math

import torch

from ..engine.canvas import on_paper
from ..engine.limits import check_budget, checked
from ..engine.timeline import Painting
from . import full, staged
from .composite import StrokeMaps, composite_white, render_stroke_map
from .spans import IncrementalOptions, IncrementalStats
from .strategies import choose, register_strategy, view_of

# The strategies, in the order the decode modes try them (full is the fallback, never tried).
register_strategy(full.STRATEGY)
register_strategy(staged.STRATEGY)


def _check_map(tensor, name: str, frames: int, spatial: tuple[int, int]) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a tensor [N,h,w], got {type(tensor).__name__}")
    if tuple(tensor.shape) != (frames, *spatial):
        raise ValueError(f"{name} has shape {tuple(tensor.shape)} but the frames need {(frames, *spatial)} (one "
                         "latent-resolution map per frame); pass the maps of the same painting")
    return tensor


def _check_decoded(images, count: int, size: tuple[int, int] | None) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"the decoder returned {type(images).__name__}, not an IMAGE tensor")
    images = on_paper(images)  # RGBA (Qwen-Image 2.1's VAE and TAESD): alpha onto the paper
    if images.dim() != 4 or images.shape[0] != count or images.shape[-1] != 3:
        raise ValueError(f"the decoder turned {count} latents into shape {tuple(images.shape)}, expected one RGB or "
                         f"RGBA image per latent [{count},H,W,3 or 4]; connect the VAE of the model that made the "
                         "latents")
    if size is not None and tuple(images.shape[1:3]) != size:
        raise ValueError(f"the decoder changed image size between chunks ({size} then {tuple(images.shape[1:3])})")
    return images


class DecodedChunks:
    """An iterator over the decoded ``IMAGE`` chunks of painted latents, in frame order; ``total``
    is the number of frames it yields in all, ``stats`` what the decoding did."""

    def __init__(self, chunks, total: int, stats: IncrementalStats):
        self._chunks, self.total, self.stats = chunks, total, stats

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()


def decoded_chunks(decoder, frames, chunk_size: int = 16, *, coverage: torch.Tensor | None = None,
                   white_canvas: bool = False, stroke_map=False, progress=None, mode: str = "full",
                   options: IncrementalOptions = IncrementalOptions(), stats: IncrementalStats | None = None
                   ) -> DecodedChunks:
    """Check the inputs now, then decode lazily: each ``next()`` gives one chunk ``[n,H,W,3]``
    (``[n,H,2W,3]`` with the stroke map).

    decoder:      a VAE's ``decode(latents [n,C,h,w]) -> [n,H,W,3]`` or a :class:`~.strategies.DecoderView`.
    frames:       latents ``[N,C,h,w]`` or a :class:`Painting` (which also supplies the maps). Only
                  ``shape``, ``dim()`` and slicing are used, so a lazy stand-in works too.
    chunk_size:   latents per decoder call (latents handed to an incremental strategy at a time).
    coverage:     ``[N,h,w]`` for the white canvas; defaults to the painting's/stroke maps'.
    white_canvas: show never-painted areas white. Frames whose latent equals the last frame bit for
                  bit (the final frame and any hold of it) are shown unmasked, so the animation ends
                  exactly on the decoded final latent.
    stroke_map:   False; True (needs a Painting); or maps for :meth:`StrokeMaps.of`, placed to the right.
    progress:     ``progress(done, total)`` after every chunk; raise in it to interrupt.
    mode:         ``full``, ``incremental`` or ``auto`` (:mod:`.strategies`); ``options`` its bound.
    stats:        filled in with what the decoding did (its strategy, decodes, speed-up).
    """
    painting = frames if isinstance(frames, Painting) else None
    latents = painting.frames if painting is not None else frames
    if not hasattr(latents, "shape") or not hasattr(latents, "dim") or latents.dim() != 4:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise ValueError(f"frames must be latents [N,C,h,w] or a Painting, got {shape}")
    total = int(latents.shape[0])
    if total == 0 or math.prod(latents.shape) == 0:
        raise ValueError(f"frames is empty (shape {tuple(latents.shape)}); paint at least one frame")
    checked("chunk_size", chunk_size)
    spatial = tuple(latents.shape[2:])

    maps = None
    if stroke_map is True:
        if painting is None:
            raise ValueError("stroke_map=True needs a Painting; pass the painting or its maps instead")
        maps = StrokeMaps.of(painting)
    elif stroke_map is not False and stroke_map is not None:
        maps = StrokeMaps.of(stroke_map)
    if maps is not None:
        for name in ("coverage", "strokes", "channels"):
            _check_map(getattr(maps, name), f"stroke map {name}", total, spatial)
    if white_canvas:
        if coverage is None:
            coverage = maps.coverage if maps is not None else painting.coverage if painting is not None else None
        if coverage is None:
            raise ValueError("white_canvas needs the coverage maps [N,h,w]; pass coverage= or a Painting")
    if coverage is not None:
        _check_map(coverage, "coverage", total, spatial)

    stats = stats if stats is not None else IncrementalStats()
    stats.strategy, run, stats.fallback = choose(view_of(decoder), mode, options, tuple(latents.shape[1:]))

    def chunks():
        size, start = None, 0
        last = latents[total - 1]
        pieces = (latents[begin : begin + chunk_size] for begin in range(0, total, chunk_size))
        with torch.no_grad():
            for images in run(pieces, stats):
                stop = start + images.shape[0]
                images = _check_decoded(images, stop - start, size)
                size = tuple(images.shape[1:3])
                if white_canvas:
                    images = composite_white(images, _painted(coverage, latents, start, stop, last, images.device))
                if maps is not None:
                    images = torch.cat([images.to(torch.float32), render_stroke_map(
                        maps.coverage[start:stop].to(images.device), maps.strokes[start:stop].to(images.device),
                        maps.channels[start:stop].to(images.device), maps.num_channels, size=size)], dim=2)
                if progress is not None:
                    progress(stop, total)
                start = stop
                yield images
                del images  # one chunk in memory: the next is decoded only after this one is let go

    return DecodedChunks(chunks(), total, stats)


def _painted(coverage, latents, start: int, stop: int, last, device) -> torch.Tensor:
    """The white canvas's coverage of frames ``start:stop``, full where a frame is the last latent
    (the final image and its holds are shown as decoded)."""
    chunk = latents[start:stop]
    painted = coverage[start:stop].to(device=device, dtype=torch.float32, copy=True)
    painted[(chunk == last.to(chunk.device)).flatten(1).all(dim=1).to(device)] = 1.0
    return painted


def decode_frames(decoder, frames, chunk_size: int = 16, **settings) -> torch.Tensor:
    """:func:`decoded_chunks` gathered into one ``IMAGE`` ``[N,H,W,3]`` (``[N,H,2W,3]`` with the stroke
    map), allocated once the first chunk tells the size: peak memory is the output plus one chunk."""
    chunks = decoded_chunks(decoder, frames, chunk_size, **settings)
    out, start = None, 0
    for images in chunks:
        if out is None:
            check_budget("images", chunks.total * math.prod(images.shape[1:]) * 4,
                         f"{chunks.total} frames of {'x'.join(map(str, images.shape[1:]))}",
                         "decode fewer frames or smaller latents")
            out = torch.empty((chunks.total, *images.shape[1:]), dtype=torch.float32, device=images.device)
        out[start : start + images.shape[0]] = images
        start += images.shape[0]
    return out


__all__ = ["DecodedChunks", "decode_frames", "decoded_chunks"]
