"""One writer per file format: an animated WEBP and an H.264 MP4, written frame by frame.

Frames come in as uint8 chunks ``[n,H,W,3]`` (:func:`to_uint8`, the one conversion from ``IMAGE``
floats, rounded). A writer keeps at most the previous frame and one encoded frame, whatever the
length of the animation:

- :class:`WebPWriter`: every frame a still WEBP (Pillow's encoder) wrapped in the ANMF chunk of the
  RIFF container, encoding only the box that differs from the previous frame; a repeated frame (a
  hold) lengthens the previous one. Pillow's own animated save keeps every encoded frame until the
  end, so it is not used.
- :class:`MP4Writer`: H.264 in MP4 with PyAV, muxing packets as the encoder emits them.

Pillow and PyAV are imported when a writer is opened (ComfyUI ships both); the engine needs neither.
A new format is one writer class with ``write(frames)``, ``close()`` and ``abort()`` and one line in
:data:`WRITERS`.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import torch

from ..engine.limits import checked


@dataclass(frozen=True)
class Encoding:
    """How the file is written. ``quality`` 0..100: WEBP's lossy quality (100 = lossless);
    for MP4 the x264 constant rate factor ``crf = round(51 - 0.4 * quality)`` (80 -> 19, visually
    lossless; 100 -> 11)."""

    format: str
    fps: float
    quality: int = 80

    def __post_init__(self):
        if self.format not in WRITERS:
            raise ValueError(f"format must be one of {', '.join(WRITERS)}, got {self.format!r}")
        checked("fps", self.fps)
        checked("quality", self.quality)

    @property
    def crf(self) -> int:
        return round(51 - 0.4 * self.quality)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """IMAGE floats 0..1 as uint8 on the CPU, rounded to the nearest level: the one conversion every
    file, preview and contact sheet of the pack goes through."""
    scaled = images.detach().to("cpu", torch.float32, copy=True)
    return scaled.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)


# --------------------------------------------------------------------------- encoders


class MissingEncoder(ValueError):
    """Pillow or PyAV is not importable (both ship with ComfyUI)."""


def _import(module: str, package: str, format: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise MissingEncoder(
            f"format {format!r} needs the Python package {package!r}, which is not installed; ComfyUI's "
            f"requirements include it (pip install {package}), or choose the other format"
        ) from error


def require_encoder(format: str) -> None:
    """Fail now, before anything is decoded, when the encoder of ``format`` is missing."""
    if format not in WRITERS:
        raise ValueError(f"format must be one of {', '.join(WRITERS)}, got {format!r}")
    WRITERS[format].require()


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
    """An animated WEBP written frame by frame into the file ``path``.

    Each distinct frame is encoded on its own (Pillow, still WEBP) and wrapped in an ANMF chunk
    that covers only the box where it differs from the previous frame (offsets rounded down to
    even, as the container requires; no blending, no disposal, so the rest stays). A frame equal
    to the previous one only lengthens it. Frame k starts at ``round(1000 k / fps)`` ms, so the
    total duration is exact whatever the rate. The RIFF size is patched on :meth:`close`.
    Memory: the previous frame and one encoded frame.
    """

    @staticmethod
    def require() -> None:
        image = _import("PIL.Image", "pillow", "webp")
        if "WEBP" not in image.SAVE:
            image.init()
        if "WEBP" not in image.SAVE:
            raise MissingEncoder("this Pillow has no WEBP support; install a Pillow built with libwebp")

    def __init__(self, path: str, width: int, height: int, encoding: Encoding, metadata: dict | None = None):
        self._image = _import("PIL.Image", "pillow", "webp")
        checked("webp side", width)
        checked("webp side", height)
        handle = self.handle = open(path, "w+b")
        self.width, self.height, self.encoding = width, height, encoding
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
            raise ValueError("a held frame would last over 4.6 hours; lower the holds")
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
        self.handle.close()

    def abort(self) -> None:
        self._pending = None
        self.handle.close()


class MP4Writer:
    """H.264 (yuv420p) in MP4 with PyAV, at ``encoding.fps`` (as core SaveVideo rounds it, to
    1/1000 s), packets muxed as the encoder emits them (the file grows during the render)."""

    @staticmethod
    def require() -> None:
        av = _import("av", "av", "mp4")
        try:
            av.codec.Codec("libx264", "w")
        except Exception as error:  # noqa: BLE001 - PyAV raises several kinds for an unknown codec
            raise MissingEncoder("this PyAV has no H.264 encoder (libx264); install the PyAV wheel") from error

    def __init__(self, path: str, width: int, height: int, encoding: Encoding, metadata: dict[str, str] | None = None):
        av = _import("av", "av", "mp4")
        if width % 2 or height % 2:
            raise ValueError(f"H.264 needs an even width and height, got {width}x{height}; use webp")
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


# Format -> its writer: ``Writer(path, width, height, encoding, metadata)`` with ``write``, ``close``
# and ``abort``, and ``Writer.require()`` to fail before anything is decoded.
WRITERS = {"webp": WebPWriter, "mp4": MP4Writer}

__all__ = ["Encoding", "MP4Writer", "MissingEncoder", "WRITERS", "WebPWriter", "require_encoder", "to_uint8"]
