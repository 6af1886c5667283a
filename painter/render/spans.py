"""Verified spans: the bound that every incremental decode strategy is held to.

A strategy brings a decoded frame up to the next latent by decoding only what changed (its
:class:`IncrementalCanvas`); this module decides when that result may be handed over. Frames go out
in spans of ``check_every``: the span's last frame is decoded in full as well and compared with what
the strategy gave (PSNR over the whole frame). A check that misses ``min_psnr`` has the whole span
decoded again in full, tightens the strategy, and after repeated misses the rest is decoded in full.
A check that passes teaches the strategy how much the change it left undecoded shows; a frame of the
span that left more than that allows is decoded again in full (a check passes when the painting went
back to an earlier frame, whatever the frames before it left stale), and the frame that left the
most, when it comes near the bound, is measured against its own full decode.
The check also resets any drift: its full decode starts the next span. Before a frame too large for
the strategy (a full decode is cheaper) the crops since the last check are checked on the frame
before. The first frame is the strategy's full decode and the last one exactly what ``decode`` gives
for that latent alone (what a VAE Decode of the final latent shows).

Images are ComfyUI ``IMAGE`` tensors ``[n,H,W,3]`` in 0..1 on the decoder's output device.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import torch

from ..engine.limits import checked

Decoder = Callable[[torch.Tensor], torch.Tensor]
# Misses of a check after which the rest of a run is decoded in full.
MAX_TIGHTENINGS = 2
# A frame of a passed span whose stale change is estimated this close to the bound is measured: the
# clamped toy decoders of tests/test_incremental_hostile.py read 2-3x (3-4.6 dB) more error than
# estimated on a pattern of change other than the one that taught the gain. Kept at or under the
# margin the staged budget leaves (staged.STALE_SHARE: 6.02 dB), so a frame is measured only after
# a check raised the gain past what the frame was cropped for, not every frame.
VERIFY_MARGIN_DB = 6.0


class IncrementalError(ValueError):
    """Bad input to incremental decoding; the message names the input and the fix."""


@dataclass(frozen=True)
class IncrementalOptions:
    """The bound incremental decoding keeps.

    min_psnr:    dB of whole-frame PSNR against the frame's full decode; a span whose check frame
                 misses it is decoded again in full.
    check_every: frames per verified span (one full decode each): bounds drift and how many frames
                 are held before they are handed over.
    """

    min_psnr: float = 45.0
    check_every: int = 32

    def __post_init__(self):
        try:
            checked("min_psnr", self.min_psnr)
            checked("check_every", self.check_every)
        except ValueError as error:
            raise IncrementalError(f"incremental decoding: {error}") from None


@dataclass
class IncrementalStats:
    """What a run did, filled in as frames are handed over."""

    strategy: str = "full"
    frames: int = 0
    full_decodes: int = 0
    crop_decodes: int = 0
    crop_area: float = 0.0  # summed over frames: the share of the latent decoded again
    checks: int = 0
    failed_checks: int = 0
    min_check_psnr: float = math.inf
    stale_redecodes: int = 0  # frames of a passed span decoded again: what they left stale was judged too much
    stale_checks: int = 0  # frames of a passed span measured against their full decode (see judge_stale)
    min_stale_check_psnr: float = math.inf
    check_psnrs: list = field(default_factory=list)
    seconds: float = 0.0  # decoding, all of it
    full_seconds: float = 0.0  # the full decodes among it
    settings: object = None  # the strategy's settings in force at the end
    fallback: str | None = None  # why the run decoded in full from some point on, if it did

    @property
    def speedup(self) -> float | None:
        """Full decodes of every frame (at the measured cost of one) over this run's time."""
        if not self.full_decodes or self.seconds <= 0:
            return None
        return self.frames * self.full_seconds / self.full_decodes / self.seconds

    def summary(self) -> str:
        crop = f"crops cover {self.crop_area / max(self.frames, 1):.1%} of a frame on average" if self.crop_decodes \
            else "no crops"
        worst = "n/a" if not self.checks else f"{self.min_check_psnr:.1f} dB"
        speed = "" if self.speedup is None else f", {self.speedup:.2f}x the speed of full decodes"
        text = (f"{self.strategy}: {self.frames} frames, {self.full_decodes} full decodes, {self.crop_decodes} crop "
                f"decodes, {crop}; {self.checks} checks against full decodes, {self.failed_checks} missed, worst "
                f"{worst}{speed}")
        if self.stale_checks:
            text += (f"; {self.stale_checks} frames measured for what they left stale, worst "
                     f"{self.min_stale_check_psnr:.1f} dB")
        if self.stale_redecodes:
            text += f"; {self.stale_redecodes} frames decoded again for what they left stale"
        return text + (f"; full decodes from then on: {self.fallback}" if self.fallback else "")


class IncrementalCanvas(Protocol):
    """A decoded frame that a strategy keeps up to date, one latent after another.

    fallback:      why every later frame must be decoded in full, or None.
    changed:       the share of the latent the last :meth:`advance` decoded again.
    pending:       how much change the last :meth:`advance` left undecoded, in the canvas's units
                   (0: none); :meth:`stale_psnr` judges it.
    start_decodes: full decodes :meth:`start` runs (the stages compared with ``decode`` are two).
    """

    fallback: str | None
    changed: float
    pending: float
    start_decodes: int

    def start(self, latent: torch.Tensor) -> torch.Tensor:
        """The first frame ``[H,W,3]``, decoded in full; the state follows it. May set ``fallback``."""

    def advance(self, latent: torch.Tensor) -> torch.Tensor | None:
        """The next frame, decoded only where it changed; None (nothing done) when so much changed
        that a full decode is cheaper. ``changed`` then says what share of the latent it decoded."""

    def restart(self, latent: torch.Tensor) -> torch.Tensor:
        """The frame decoded in full, the state reset to it: what a check compares against."""

    def score(self, guess: torch.Tensor, reference: torch.Tensor) -> float:
        """PSNR of ``guess`` against ``decode`` of its latent, judged from ``reference`` (a restart)."""

    def tighten(self) -> bool:
        """After a missed check: decode more of what changed from now on; False when it cannot."""

    def learn(self, latent: torch.Tensor, reference: torch.Tensor) -> None:
        """Learn from ``reference``, the full decode of ``latent``, as a restart does, keeping the state."""

    def stale_psnr(self, pending: float) -> float:
        """The PSNR a frame that left ``pending`` undecoded has, as far as the canvas knows now."""

    def learn_stale(self, image: torch.Tensor, pending: float, reference: torch.Tensor) -> None:
        """Learn from ``image``, a frame that left ``pending`` undecoded, and ``reference``, its full decode."""


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Whole-image PSNR in dB of 0..1 images (inf when identical)."""
    return psnr_of(mse(image, reference))


def mse(image: torch.Tensor, reference: torch.Tensor) -> float:
    return (image.to(torch.float64) - reference.to(torch.float64)).pow(2).mean().item()


def psnr_of(error: float) -> float:
    return math.inf if error == 0 else 10.0 * math.log10(1.0 / error)


def check_image(image, h: int, w: int) -> torch.Tensor:
    """A decoder's image of one ``h`` x ``w`` latent: ``[1,H,W,3]`` at a whole scale, else an error."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise IncrementalError(f"the decoder turned one {h}x{w} latent into {shape}, expected [1,H,W,3]; use an image VAE")
    if image.shape[1] % h or image.shape[2] % w or image.shape[1] // h != image.shape[2] // w:
        raise IncrementalError(f"the decoder turned a {h}x{w} latent into {tuple(image.shape[1:3])} pixels, not a "
                               "whole multiple of it; incremental decoding needs a decoder with a fixed scale "
                               "(use decode=full)")
    return image


def single_frames(latents) -> Iterator[tuple[torch.Tensor, bool]]:
    """Single frames ``[1,C,h,w]`` of a tensor or of an iterable of chunks, each with whether it is
    the last one (so the last frame can be decoded in full)."""
    if isinstance(latents, torch.Tensor):
        chunks: Iterable = (latents,)
    elif isinstance(latents, Iterable):
        chunks = latents
    else:
        raise IncrementalError(f"frames must be latents [N,C,h,w] or chunks of them, got {type(latents).__name__}")
    shape, previous = None, None
    for chunk in chunks:
        if not isinstance(chunk, torch.Tensor) or chunk.dim() != 4:
            got = tuple(chunk.shape) if isinstance(chunk, torch.Tensor) else type(chunk).__name__
            raise IncrementalError(f"frames must be latents [N,C,h,w], got {got}")
        if shape is None:
            shape = tuple(chunk.shape[1:])
            if min(shape) < 1:
                raise IncrementalError(f"frames have an empty shape {tuple(chunk.shape)}")
        elif tuple(chunk.shape[1:]) != shape:
            raise IncrementalError(f"a chunk of frames has shape {tuple(chunk.shape[1:])} after {shape}; all frames "
                                   "must share one latent shape")
        if not chunk.is_floating_point() or not bool(torch.isfinite(chunk).all()):
            raise IncrementalError("frames hold NaN/inf or are not floating point; repaint them")
        for index in range(chunk.shape[0]):
            if previous is not None:
                yield previous, False
            previous = chunk[index : index + 1].contiguous()
    if previous is None:
        raise IncrementalError("no frames to decode; paint at least one frame")
    yield previous, True


class _Timed:
    """Time spent in full decodes, added to the stats with their count."""

    def __init__(self, stats: IncrementalStats):
        self.stats = stats

    def full(self, function, *args, decodes: int = 1):
        started = time.perf_counter()
        result = function(*args)
        self.stats.full_seconds += time.perf_counter() - started
        self.stats.full_decodes += decodes
        return result


def decode_verified(canvas: IncrementalCanvas, decode: Decoder, latents, options: IncrementalOptions,
                    stats: IncrementalStats) -> Iterator[torch.Tensor]:
    """Frames ``[n,H,W,3]`` in verified spans (see the module docstring). ``canvas.fallback`` (set by
    the canvas, or here after repeated misses) sends every later frame to ``decode`` in full."""
    timer = _Timed(stats)
    resumed = time.perf_counter()  # decoding time, not what the consumer does between spans
    span: list[torch.Tensor] = []
    span_latents: list[torch.Tensor] = []
    span_pending: list[float] = []  # what each frame of the span left undecoded
    tightenings = 0
    unverified = False  # the image holds crops or stale change no check has seen yet
    previous = None
    pending = 0.0

    def exact(latent):
        image = timer.full(decode, latent)
        return check_image(image, *latent.shape[-2:])[0]

    def judge_stale() -> None:
        """After a passed check: the check's full decode taught the canvas how much stale change
        shows where the painting is now; a frame of the span that left more behind than that allows
        is decoded in full (a check passes when the painting moved on or went back, whatever the
        frames before it left stale). The gain is an estimate (a gain taught by one pattern of
        change reads another 2-3x low), so the frame that left the most, when its estimate comes
        within VERIFY_MARGIN_DB of the bound, is measured against its own full decode, which
        teaches the canvas; while such a measurement finds the estimate low, the next is measured."""
        while True:
            estimates = {index: canvas.stale_psnr(pending) for index, pending in enumerate(span_pending) if pending > 0}
            for index, estimate in estimates.items():
                if estimate < options.min_psnr:
                    span[index], span_pending[index] = exact(span_latents[index]), 0.0
                    stats.stale_redecodes += 1
            near = [(estimate, index) for index, estimate in estimates.items()
                    if options.min_psnr <= estimate < options.min_psnr + VERIFY_MARGIN_DB]
            if not near:
                return
            estimate, index = min(near)
            reference = exact(span_latents[index])
            measured = canvas.score(span[index], reference)
            stats.stale_checks += 1
            stats.min_stale_check_psnr = min(stats.min_stale_check_psnr, measured)
            canvas.learn_stale(span[index], span_pending[index], reference)
            span[index], span_pending[index] = reference, 0.0
            if measured >= estimate:
                return

    def record(score: float) -> None:
        nonlocal tightenings
        stats.checks += 1
        stats.check_psnrs.append(score)
        stats.min_check_psnr = min(stats.min_check_psnr, score)
        if score >= options.min_psnr:
            judge_stale()
            return
        stats.failed_checks += 1
        span[:] = [exact(latent) for latent in span_latents]  # the span may be off by as much
        span_pending[:] = [0.0] * len(span_pending)
        tightenings += 1
        if tightenings > MAX_TIGHTENINGS or not canvas.tighten():
            canvas.fallback = f"crops missed {options.min_psnr:g} dB {tightenings} times (last {score:.1f} dB)"

    with torch.inference_mode():
        for latent, last in single_frames(latents):
            closes_span = last or len(span) + 1 >= options.check_every
            if previous is None:
                image = timer.full(canvas.start, latent, decodes=canvas.start_decodes)
            elif canvas.fallback:
                image = exact(latent)
            else:
                image = canvas.advance(latent)
                if image is None and unverified:
                    # A frame too large for crops ends their run; crops no check has seen lead up to
                    # it, so the last of them is checked against its own full decode, and from
                    # there only this frame's own change is pending, often small enough to crop.
                    record(canvas.score(span[-1], timer.full(canvas.restart, previous)))
                    unverified = False
                    image = None if canvas.fallback else canvas.advance(latent)
                if image is None:
                    image = exact(latent) if last or canvas.fallback else timer.full(canvas.restart, latent)
                    unverified = False
                else:
                    stats.crop_decodes += canvas.changed > 0
                    stats.crop_area += canvas.changed
                    unverified = unverified or canvas.changed > 0 or canvas.pending > 0
                    if closes_span:
                        guess = image.clone()
                        if last:
                            image = exact(latent)
                            canvas.learn(latent, image)
                        else:
                            image = timer.full(canvas.restart, latent)
                        record(psnr(guess, image) if last else canvas.score(guess, image))
                        unverified = False
                    else:
                        pending = canvas.pending
            span.append(image.clone())
            span_latents.append(latent)
            span_pending.append(pending)
            pending = 0.0
            previous = latent
            stats.frames += 1
            if closes_span:
                chunk = torch.stack(span)
                span.clear()
                span_latents.clear()
                span_pending.clear()
                stats.seconds += time.perf_counter() - resumed
                yield chunk
                resumed = time.perf_counter()
    stats.fallback = stats.fallback or canvas.fallback


__all__ = ["IncrementalCanvas", "IncrementalError", "IncrementalOptions", "IncrementalStats", "check_image",
           "decode_verified", "mse", "psnr", "psnr_of", "single_frames"]
