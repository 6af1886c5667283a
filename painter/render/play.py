"""The order frames are played in: segments joined, holds, ping-pong. One implementation, iterated
by the ``IMAGE`` batch of Assemble Frames (:func:`assemble`) and by the file sink (Render, the demo).

- **Joins.** Segments play one after another; where a segment starts on the exact frame the previous
  one ended on (a transition from a painting's final image), that frame is played once
  (:func:`distinct_chunks`).
- **Holds.** The first frame is shown ``1 + hold_first`` times and the last ``1 + hold_last`` times
  (views of one frame, never copies).
- **Ping-pong.** The way back follows without the turning frames (f0..fn plays f0..fn, f(n-1)..f1),
  so a loop never shows a frame twice in a row beyond the holds. The forward frames it needs again
  are kept by a :class:`FrameStore`: views of the input for an ``IMAGE`` batch, a spill file of bytes
  for a stream, so nothing is decoded twice.
"""

from __future__ import annotations

import math
import tempfile
from typing import Callable, Iterable, Iterator, Protocol

import torch

from ..engine.limits import LIMITS, check_budget, checked

# Frames read back per block on the way back of a ping-pong.
READ_BACK_FRAMES = 16


class FrameStore(Protocol):
    """The forward frames a ping-pong plays again, in order."""

    def keep(self, frames: torch.Tensor) -> None: ...

    def read(self, start: int, stop: int) -> torch.Tensor: ...


class KeptViews:
    """A :class:`FrameStore` of views of frames already in memory (nothing is copied)."""

    def __init__(self):
        self.chunks: list[torch.Tensor] = []
        self.ends: list[int] = []

    def keep(self, frames):
        self.chunks.append(frames)
        self.ends.append((self.ends[-1] if self.ends else 0) + frames.shape[0])

    def read(self, start, stop):
        parts, begin = [], 0
        for chunk, end in zip(self.chunks, self.ends):
            if end > start and begin < stop:
                parts.append(chunk[max(start, begin) - begin : min(stop, end) - begin])
            begin = end
        return torch.cat(parts)


class SpillFile:
    """A :class:`FrameStore` of uint8 frames in an unnamed temporary file (memory: one block)."""

    def __init__(self, folder: str | None):
        self.file = tempfile.TemporaryFile(dir=folder)
        self.shape: tuple[int, ...] | None = None

    def keep(self, frames):
        self.shape = tuple(frames.shape[1:])
        self.file.write(frames.contiguous().numpy().data)

    def read(self, start, stop):
        size = math.prod(self.shape)
        block = bytearray((stop - start) * size)
        self.file.seek(start * size)
        if self.file.readinto(block) != len(block):
            raise OSError("the ping-pong spill file came back short; is the output disk full?")
        return torch.frombuffer(block, dtype=torch.uint8).view(stop - start, *self.shape)

    def close(self):
        self.file.close()


def played_count(frames: int, hold_first: int, hold_last: int, pingpong: bool) -> int:
    """How many frames play for ``frames`` distinct frames, checked against the limit."""
    checked("hold_first", hold_first, LIMITS["hold"])
    checked("hold_last", hold_last, LIMITS["hold"])
    count = frames + hold_first + hold_last + (max(frames - 2, 0) if pingpong else 0)
    return checked("played frames", count)


def repeats_join(previous_last: torch.Tensor, first: torch.Tensor) -> bool:
    """Whether a segment starts on the exact frame the previous one ended on."""
    return torch.equal(previous_last, first.to(previous_last.device))


def frame_shape(images, number: int, shape: tuple[int, ...] | None, rgb: bool = False) -> tuple[int, ...]:
    """The frame shape ``(H, W, C)`` of segment ``number``'s chunk ``images``; refused when it is not
    an IMAGE (with ``rgb``: not 3 channels, what the video encoders take) or differs from ``shape``
    (the first segment's; None for the first)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or (rgb and images.shape[-1] != 3):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"segment {number} must be an IMAGE [N,H,W,{3 if rgb else 'C'}], got {got}")
    own = tuple(images.shape[1:])
    if shape is not None and own != shape:
        raise ValueError(f"segment {number} has frames of {own} but segment 1 has {shape}; every segment must be "
                         "decoded at the same size (the same latent size, and all or none with a stroke map beside it)")
    return own


def distinct_chunks(segments: Iterable[Iterable[torch.Tensor]], rgb: bool = False) -> Iterator[torch.Tensor]:
    """The segments' chunks in order, each frame shape checked, a repeated join frame dropped."""
    shape, join = None, None
    for number, chunks in enumerate(segments, start=1):
        first = True
        for chunk in chunks:
            shape = frame_shape(chunk, number, shape, rgb)
            if first and join is not None and chunk.shape[0] and repeats_join(join, chunk[0]):
                chunk = chunk[1:]
            first = False
            if chunk.shape[0]:
                join = chunk[-1]
                yield chunk


def play(chunks: Iterable[torch.Tensor], store: FrameStore, *, hold_first: int = 0, hold_last: int = 0,
         pingpong: bool = False, progress: Callable[[int], None] | None = None) -> Iterator[torch.Tensor]:
    """The frames of ``chunks`` (distinct frames, in order) in play order, as views of the input. The
    latest frame is held back until the input ends (only then is it known to be the last); the way
    back of a ping-pong is read from ``store`` in blocks, ``progress(frames)`` after each."""
    emitted, pending = 0, None  # distinct frames played; the latest one, not yet played

    def forward(frames):
        nonlocal emitted
        if emitted == 0:
            yield frames[:1].expand(1 + hold_first, *frames.shape[1:])
            if frames.shape[0] > 1:
                yield frames[1:]
        else:
            yield frames
        if pingpong:
            store.keep(frames)
        emitted += frames.shape[0]

    for chunk in chunks:
        if pending is not None:
            yield from forward(pending[None])
        if chunk.shape[0] > 1:
            yield from forward(chunk[:-1])
        pending = chunk[-1].clone()  # a copy: a view would keep the whole chunk alive
    if pending is None:
        raise ValueError("no frames to play; connect painted frames")
    if emitted == 0:
        yield pending[None].expand(1 + hold_first + hold_last, *pending.shape)
        return
    yield pending[None].expand(1 + hold_last, *pending.shape)
    if not pingpong:
        return
    stop = emitted  # frames emitted-1 .. 1 (the last frame, index `emitted`, was never kept)
    while stop > 1:
        start = max(1, stop - READ_BACK_FRAMES)
        yield store.read(start, stop).flip(0)
        if progress is not None:
            progress(stop - start)
        stop = start


def assemble(sequences, *, hold_first: int = 0, hold_last: int = 0, pingpong: bool = False) -> torch.Tensor:
    """Join IMAGE sequences into one animation in play order (see the module docstring), allocated
    once after the frame count is checked; the dtype is the first sequence's."""
    if isinstance(sequences, torch.Tensor):
        sequences = [sequences]
    sequences = list(sequences)
    if not sequences:
        raise ValueError("no sequences given; pass at least one IMAGE batch")
    shape = None
    for number, sequence in enumerate(sequences, start=1):
        shape = frame_shape(sequence, number, shape)
        if sequence.shape[0] == 0:
            raise ValueError(f"segment {number} has no frames; remove it or decode it first")
    joins = sum(repeats_join(before[-1], after[0]) for before, after in zip(sequences, sequences[1:]))
    count = played_count(sum(s.shape[0] for s in sequences) - joins, hold_first, hold_last, pingpong)
    check_budget("images", count * math.prod(shape) * sequences[0].element_size(), f"{count} frames of "
                 f"{'x'.join(map(str, shape))}", "lower the holds or use fewer or shorter sequences")
    out = torch.empty((count, *shape), dtype=sequences[0].dtype, device=sequences[0].device)
    position = 0
    for frames in play(distinct_chunks([s] for s in sequences), KeptViews(), hold_first=hold_first,
                       hold_last=hold_last, pingpong=pingpong):
        out[position : position + frames.shape[0]] = frames
        position += frames.shape[0]
    return out


def fps_for_duration(frames: int, seconds: float) -> float:
    """The frame rate that plays ``frames`` frames in ``seconds`` (the author's demos fit 20 s)."""
    checked("played frames", frames)
    checked("duration_seconds", seconds)
    if seconds <= 0:
        raise ValueError(f"duration_seconds must be above 0 to give a frame rate, got {seconds!r}")
    rate = frames / float(seconds)
    try:
        return checked("fps", rate)
    except ValueError:
        raise ValueError(f"{frames} frames in {seconds:g} s is {rate:.3g} fps, too fast; give a longer duration") from None


__all__ = ["FrameStore", "KeptViews", "SpillFile", "assemble", "distinct_chunks", "fps_for_duration", "frame_shape",
           "play", "played_count", "repeats_join"]
