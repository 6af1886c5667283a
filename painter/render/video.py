"""Streaming animation output: decoded chunks in, an animated WEBP or an MP4 file out.

Nothing here holds more than one chunk of frames, whatever the length of the animation:

- :func:`played_frames` turns the decoded chunks of one or more segments (a painting, a
  transition, ...) into the frames in play order, with the joins, holds and ping-pong of
  :func:`painter.output.assemble`. The way back of a ping-pong is read back from a spill file of
  the forward frames (raw RGB bytes on disk), so nothing is decoded twice and nothing is kept.
- :class:`WebPWriter` writes an animated WEBP frame by frame: every frame is a still WEBP
  (Pillow's encoder) wrapped in the ANMF chunk of the RIFF container; only the part that differs
  from the previous frame is encoded, and identical frames (holds) lengthen the previous one.
  Pillow's own animated save keeps every encoded frame until the end, so it is not used.
- :class:`MP4Writer` writes H.264 in MP4 with PyAV, muxing packets as the encoder emits them.
- :func:`render` writes to a hidden temporary file beside the target and renames it at the end:
  an interrupted or failed render leaves no file behind.

Pillow and PyAV are imported when a writer is opened (ComfyUI ships both); the engine itself
needs neither. Images come in as ComfyUI ``IMAGE`` chunks ``[n,H,W,3]`` float 0..1 and are
quantised like the core save nodes (``255 * x`` clamped and truncated to uint8).
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

import torch

from .output import MAX_ASSEMBLED_FRAMES, MAX_FPS, hold_count, joined_frame_shape, repeats_join

FORMATS = ("webp", "mp4")
Progress = Callable[[int, int], None]

# Frames read back per block on the way back of a ping-pong.
READ_BACK_FRAMES = 16


@dataclass(frozen=True)
class Encoding:
    """How the file is written. ``quality`` 0..100: WEBP's lossy quality (100 = lossless);
    for MP4 the x264 constant rate factor ``crf = round(51 - 0.4 * quality)`` (80 -> 19, visually
    lossless; 100 -> 11)."""

    format: str
    fps: float
    quality: int = 80

    def check(self, where: str) -> "Encoding":
        if self.format not in FORMATS:
            raise ValueError(f"{where}: format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not math.isfinite(self.fps) \
                or not 0 < self.fps <= MAX_FPS:
            raise ValueError(f"{where}: fps must be a number above 0 and at most {MAX_FPS:g}, got {self.fps!r}; try 24")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 0 <= self.quality <= 100:
            raise ValueError(f"{where}: quality must be a whole number 0..100, got {self.quality!r}; try 80")
        return self

    @property
    def crf(self) -> int:
        return round(51 - 0.4 * self.quality)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """IMAGE floats 0..1 as uint8 on the CPU, quantised as ComfyUI's save nodes do."""
    scaled = images.detach().to("cpu", torch.float32, copy=True)
    return scaled.mul_(255.0).clamp_(0.0, 255.0).to(torch.uint8)


# --------------------------------------------------------------------------- encoders


class MissingEncoder(ValueError):
    """Pillow or PyAV is not importable (both ship with ComfyUI)."""


def _import(module: str, package: str, format: str, where: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise MissingEncoder(
            f"{where}: format {format!r} needs the Python package {package!r}, which is not installed; ComfyUI's "
            f"requirements include it (pip install {package}), or choose the other format"
        ) from error


def require_encoder(format: str, where: str = "render") -> None:
    """Fail now, before anything is decoded, when the encoder of ``format`` is missing."""
    if format == "webp":
        image = _import("PIL.Image", "pillow", format, where)
        if "WEBP" not in image.SAVE:
            image.init()
        if "WEBP" not in image.SAVE:
            raise MissingEncoder(f"{where}: this Pillow has no WEBP support; install a Pillow built with libwebp")
    elif format == "mp4":
        av = _import("av", "av", format, where)
        try:
            av.codec.Codec("libx264", "w")
        except Exception as error:  # noqa: BLE001 - PyAV raises several kinds for an unknown codec
            raise MissingEncoder(f"{where}: this PyAV has no H.264 encoder (libx264); install the PyAV wheel") from error
    else:
        raise ValueError(f"{where}: format must be one of {', '.join(FORMATS)}, got {format!r}")


def _chunks_of(riff: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(fourcc, whole chunk with header and padding) of a RIFF WEBP file's top-level chunks."""
    if riff[:4] != b"RIFF" or riff[8:12] != b"WEBP":
        raise ValueError("the WEBP encoder returned something that is not a WEBP file")
    pos = 12
    while pos + 8 <= len(riff):
        size = struct.unpack_from("<I", riff, pos + 4)[0]
        end = pos + 8 + size + (size & 1)
        yield riff[pos : pos + 4], riff[pos:end]
        pos = end


class WebPWriter:
    """An animated WEBP written frame by frame into ``handle`` (a seekable binary file).

    Each distinct frame is encoded on its own (Pillow, still WEBP) and wrapped in an ANMF chunk
    that covers only the box where it differs from the previous frame (offsets rounded down to
    even, as the container requires; no blending, no disposal, so the rest stays). A frame equal
    to the previous one only lengthens it. Frame k starts at ``round(1000 k / fps)`` ms, so the
    total duration is exact whatever the rate. The RIFF size is patched on :meth:`close`.
    Memory: the previous frame and one encoded frame.
    """

    def __init__(self, handle: BinaryIO, width: int, height: int, encoding: Encoding, where: str = "render"):
        self._image = _import("PIL.Image", "pillow", "webp", where)
        if not (1 <= width <= 16384 and 1 <= height <= 16384):
            raise ValueError(f"{where}: WEBP frames are at most 16384 px a side, got {width}x{height}; use mp4")
        self.handle, self.width, self.height, self.encoding = handle, width, height, encoding
        self._options = {"lossless": True, "quality": 100} if encoding.quality >= 100 else {"quality": encoding.quality}
        self._start = handle.tell()
        vp8x = struct.pack("<B3x", 0x02) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        anim = struct.pack("<4BH", 255, 255, 255, 255, 0)  # white background (BGRA), loop forever
        handle.write(b"RIFF\0\0\0\0WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
                     + b"ANIM" + struct.pack("<I", len(anim)) + anim)
        self.frames = 0  # frames played so far, pending included
        self.written = 0  # ANMF chunks written
        self._previous: torch.Tensor | None = None  # the last distinct frame [H,W,3] uint8
        self._pending: bytes | None = None  # its ANMF payload without the duration
        self._pending_from = 0  # the frame index it starts at

    def _time(self, frame: int) -> int:
        return round(1000.0 * frame / self.encoding.fps)

    def _flush(self) -> None:
        if self._pending is None:
            return
        duration = max(1, self._time(self.frames) - self._time(self._pending_from))
        if duration >= 1 << 24:
            raise ValueError("render: a held frame would last over 4.6 hours; lower the holds")
        head, body = self._pending[:12], self._pending[12:]
        payload = head + duration.to_bytes(3, "little") + bytes([0x02]) + body
        self.handle.write(b"ANMF" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1))
        self.written += 1
        self._pending = None

    def _box(self, frame: torch.Tensor) -> tuple[int, int, int, int] | None:
        """(x, y, w, h) of what changed since the previous frame, x and y even; None if nothing."""
        if self._previous is None:
            return 0, 0, self.width, self.height
        changed = (frame != self._previous).any(dim=2)
        rows = torch.nonzero(changed.any(dim=1)).flatten()
        if rows.numel() == 0:
            return None
        cols = torch.nonzero(changed.any(dim=0)).flatten()
        y0, y1 = int(rows[0]) & ~1, int(rows[-1]) + 1
        x0, x1 = int(cols[0]) & ~1, int(cols[-1]) + 1
        return x0, y0, x1 - x0, y1 - y0

    def write(self, frames: torch.Tensor) -> None:
        """Append frames ``[n,H,W,3]`` uint8."""
        for frame in frames:
            box = self._box(frame)
            if box is None:
                self.frames += 1
                continue
            self._flush()
            x, y, w, h = box
            buffer = io.BytesIO()
            self._image.fromarray(frame[y : y + h, x : x + w].contiguous().numpy(), "RGB").save(
                buffer, format="WEBP", **self._options)
            body = b"".join(chunk for fourcc, chunk in _chunks_of(buffer.getvalue())
                            if fourcc in (b"ALPH", b"VP8 ", b"VP8L"))
            self._pending = b"".join(v.to_bytes(3, "little") for v in (x // 2, y // 2, w - 1, h - 1)) + body
            self._pending_from = self.frames
            self._previous = frame.clone()
            self.frames += 1

    def close(self) -> None:
        self._flush()
        end = self.handle.tell()
        self.handle.seek(self._start + 4)
        self.handle.write(struct.pack("<I", end - self._start - 8))
        self.handle.seek(end)
        self.handle.flush()

    def abort(self) -> None:
        self._pending = None


class MP4Writer:
    """H.264 (yuv420p) in MP4 with PyAV, at ``encoding.fps`` (as core SaveVideo rounds it, to
    1/1000 s), packets muxed as the encoder emits them (the file grows during the render)."""

    def __init__(self, path: str, width: int, height: int, encoding: Encoding, where: str = "render",
                 metadata: dict[str, str] | None = None):
        av = _import("av", "av", "mp4", where)
        if width % 2 or height % 2:
            raise ValueError(f"{where}: H.264 needs an even width and height, got {width}x{height}; use webp")
        self._av = av
        self.frames = 0
        self._container = av.open(path, mode="w", format="mp4", options={"movflags": "use_metadata_tags"})
        try:
            for key, value in (metadata or {}).items():
                self._container.metadata[key] = value
            rate = Fraction(round(encoding.fps * 1000), 1000)
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.width, self._stream.height = width, height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(encoding.crf)}
        except BaseException:
            self._container.close()
            raise

    def write(self, frames: torch.Tensor) -> None:
        for frame in frames:
            picture = self._av.VideoFrame.from_ndarray(frame.contiguous().numpy(), format="rgb24")
            picture.pts = self.frames
            self._container.mux(self._stream.encode(picture.reformat(format="yuv420p")))
            self.frames += 1

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the file is deleted anyway; the first error is the one to report
            pass


# --------------------------------------------------------------------------- play order


def planned_frames(lengths: Sequence[int], hold_first: int, hold_last: int, pingpong: bool,
                   where: str = "render") -> int:
    """An upper bound of the frames played (exact when no join frame repeats), refused above
    :data:`MAX_ASSEMBLED_FRAMES` before anything is decoded."""
    hold_first = hold_count(hold_first, "hold_first", where)
    hold_last = hold_count(hold_last, "hold_last", where)
    length = sum(lengths)
    count = length + hold_first + hold_last + (max(length - 2, 0) if pingpong else 0)
    if count > MAX_ASSEMBLED_FRAMES:
        raise ValueError(
            f"{where}: that makes {count} frames, more than {MAX_ASSEMBLED_FRAMES}; lower the holds or use fewer/shorter segments"
        )
    return count


def played_frames(
    segments: Iterable[Iterable[torch.Tensor]],
    *,
    hold_first: int = 0,
    hold_last: int = 0,
    pingpong: bool = False,
    spill_dir: str | None = None,
    progress: Callable[[int], None] | None = None,
    where: str = "render",
) -> Iterator[torch.Tensor]:
    """The frames of the animation in play order, as uint8 chunks ``[n,H,W,3]``.

    The order is :func:`painter.output.assemble`'s: segments in order, a segment's first frame
    dropped when it equals the previous segment's last (compared as decoded floats); the first
    frame shown ``1 + hold_first`` times, the last ``1 + hold_last`` times; with ``pingpong`` the
    way back without the turning frames. Holds are views of one frame. The last frame seen is
    kept back until the input ends (only then is it known to be the last). With ``pingpong`` the
    forward frames go to an unnamed temporary file in ``spill_dir`` and are read back in blocks
    of :data:`READ_BACK_FRAMES`, reporting ``progress(frames)`` after each block.
    """
    hold_first = hold_count(hold_first, "hold_first", where)
    hold_last = hold_count(hold_last, "hold_last", where)
    spill = tempfile.TemporaryFile(dir=spill_dir) if pingpong else None
    try:
        shape = None
        emitted = 0  # distinct frames yielded so far
        pending = None  # the latest distinct frame (uint8), not yet yielded
        join = None  # the previous segment's last frame (float), for the join check
        for number, chunks in enumerate(segments, start=1):
            first = True
            for chunk in chunks:
                shape = joined_frame_shape(chunk, number, shape, where, noun="segment", rgb=True)
                if first and join is not None and chunk.shape[0] and repeats_join(join, chunk[0]):
                    chunk = chunk[1:]
                first = False
                if chunk.shape[0] == 0:
                    continue
                join = chunk[-1].clone()
                frames = to_uint8(chunk)
                del chunk
                ready = frames[:-1] if pending is None else torch.cat([pending[None], frames[:-1]])
                pending = frames[-1].clone()
                del frames
                if ready.shape[0]:
                    if emitted == 0:
                        yield ready[:1].expand(1 + hold_first, *shape)
                        if ready.shape[0] > 1:
                            yield ready[1:]
                    else:
                        yield ready
                    if spill is not None:
                        spill.write(ready.contiguous().numpy().data)
                    emitted += ready.shape[0]
                del ready
        if pending is None:
            raise ValueError(f"{where}: no frames to render; connect painted frames")
        if emitted == 0:
            yield pending[None].expand(1 + hold_first + hold_last, *shape)
            return
        yield pending[None].expand(1 + hold_last, *shape)
        if spill is None:
            return
        # Way back: frames emitted-1 .. 1 (the last frame, index `emitted`, was never spilled).
        frame_bytes = math.prod(shape)
        stop = emitted  # exclusive upper index still to play back
        while stop > 1:
            start = max(1, stop - READ_BACK_FRAMES)
            block = bytearray((stop - start) * frame_bytes)
            spill.seek(start * frame_bytes)
            if spill.readinto(block) != len(block):
                raise OSError(f"{where}: the ping-pong spill file came back short; is the output disk full?")
            yield torch.frombuffer(block, dtype=torch.uint8).view(stop - start, *shape).flip(0)
            if progress is not None:
                progress(stop - start)
            stop = start
    finally:
        if spill is not None:
            spill.close()


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Rendered:
    """What :func:`render` wrote: the file, the frames played, the frame size and rate."""

    path: str
    format: str
    frames: int
    width: int
    height: int
    fps: float


def temporary_path(path: str) -> str:
    """The hidden file beside ``path`` that a render writes before renaming it to ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.partial")


def render(
    segments: Iterable[Iterable[torch.Tensor]],
    path: str,
    encoding: Encoding,
    *,
    hold_first: int = 0,
    hold_last: int = 0,
    pingpong: bool = False,
    progress: Callable[[int], None] | None = None,
    metadata: dict[str, str] | None = None,
    where: str = "render",
) -> Rendered:
    """Write the segments' decoded chunks as one animation to ``path``, atomically.

    segments: iterables of IMAGE chunks (e.g. :func:`painter.output.decoded_chunks` of each
              painting or transition), consumed lazily, one chunk at a time.
    progress: ``progress(frames)`` for the frames read back on the way back of a ping-pong (the
              decoding reports its own progress); raise in it (or in the decoder's) to cancel.
    The file is written as a hidden ``.<name>.<pid>.partial`` in the same folder and renamed to
    ``path`` when complete; on any error or interrupt it is deleted and nothing is left.
    """
    encoding = encoding.check(where)
    require_encoder(encoding.format, where)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"{where}: the output folder {folder} does not exist")
    partial = temporary_path(path)
    writer = None
    handle = None
    try:
        for frames in played_frames(segments, hold_first=hold_first, hold_last=hold_last, pingpong=pingpong,
                                    spill_dir=folder, progress=progress, where=where):
            if writer is None:
                height, width = int(frames.shape[1]), int(frames.shape[2])
                if encoding.format == "webp":
                    handle = open(partial, "w+b")
                    writer = WebPWriter(handle, width, height, encoding, where)
                else:
                    writer = MP4Writer(partial, width, height, encoding, where, metadata)
            writer.write(frames)
        writer.close()
        if handle is not None:
            handle.close()
        os.replace(partial, path)
    except BaseException:
        if writer is not None:
            writer.abort()
        if handle is not None:
            handle.close()
        if os.path.exists(partial):
            os.remove(partial)
        raise
    return Rendered(os.path.abspath(path), encoding.format, writer.frames, width, height, float(encoding.fps))


__all__ = [
    "FORMATS",
    "Encoding",
    "MP4Writer",
    "MissingEncoder",
    "Rendered",
    "WebPWriter",
    "planned_frames",
    "played_frames",
    "render",
    "require_encoder",
    "temporary_path",
    "to_uint8",
]
