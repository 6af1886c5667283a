"""The sink: decoded segments written to an animation file in play order, atomically.

:func:`render` takes each segment's decoded chunks (e.g. :func:`~.decoding.decoded_chunks` of a
painting and of the transitions after it), puts them in play order (:mod:`.play`) as bytes
(:func:`~.writers.to_uint8`) and hands them to the format's writer (:mod:`.writers`). Nothing holds
more than one chunk of frames; the way back of a ping-pong is read from a spill file beside the
output. The file is written under a hidden temporary name in the same folder and renamed when
complete, so an interrupted or failed render leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from .play import SpillFile, distinct_chunks, play
from .writers import WRITERS, Encoding, require_encoder, to_uint8


@dataclass(frozen=True)
class Rendered:
    """What :func:`render` wrote: the file, the frames played, the frame size and rate."""

    path: str
    format: str
    frames: int
    width: int
    height: int
    fps: float


def played_frames(segments: Iterable[Iterable[torch.Tensor]], *, hold_first: int = 0, hold_last: int = 0,
                  pingpong: bool = False, spill_dir: str | None = None,
                  progress: Callable[[int], None] | None = None) -> Iterator[torch.Tensor]:
    """The segments' decoded ``IMAGE`` chunks as uint8 frames in play order (joins, holds, ping-pong),
    the way back read from a spill file in ``spill_dir`` that is gone when the iteration ends."""
    spill = SpillFile(spill_dir) if pingpong else None
    try:
        yield from play((to_uint8(chunk) for chunk in distinct_chunks(segments, rgb=True)), spill,
                        hold_first=hold_first, hold_last=hold_last, pingpong=pingpong, progress=progress)
    finally:
        if spill is not None:
            spill.close()


def temporary_path(path: str) -> str:
    """The hidden file beside ``path`` that a render writes before renaming it to ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.partial")


def render(segments: Iterable[Iterable[torch.Tensor]], path: str, encoding: Encoding, *, hold_first: int = 0,
           hold_last: int = 0, pingpong: bool = False, progress: Callable[[int], None] | None = None,
           metadata: dict[str, str] | None = None) -> Rendered:
    """Write the segments' decoded ``IMAGE`` chunks as one animation to ``path``, atomically.

    progress: ``progress(frames)`` for the frames read back on the way back of a ping-pong (the
              decoding reports its own progress); raise in it (or in the decoder's) to cancel.
    metadata: text tags for the file (MP4 only: the prompt and the workflow, as core Save Video).
    """
    require_encoder(encoding.format)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"the output folder {folder} does not exist")
    partial = temporary_path(path)
    writer, frames = None, 0
    played = played_frames(segments, hold_first=hold_first, hold_last=hold_last, pingpong=pingpong, spill_dir=folder,
                           progress=progress)
    try:
        for chunk in played:
            if writer is None:
                height, width = int(chunk.shape[1]), int(chunk.shape[2])
                writer = WRITERS[encoding.format](partial, width, height, encoding, metadata)
            writer.write(chunk)
            frames += chunk.shape[0]
        writer.close()
        os.replace(partial, path)
    except BaseException:
        if writer is not None:
            writer.abort()
        if os.path.exists(partial):
            os.remove(partial)
        raise
    finally:
        played.close()
    return Rendered(os.path.abspath(path), encoding.format, frames, width, height, float(encoding.fps))


__all__ = ["Rendered", "played_frames", "render", "temporary_path"]
