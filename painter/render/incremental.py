"""Incremental decoding: decode only where a frame changed, paste it into the previous frame.

A painted frame differs from the one before it only around one stroke, yet a full decode costs
the same for every frame. Here each frame is decoded from the previous decoded frame: the
region whose decoder input changed, widened by the decoder's reach (``halo``) and by ``context``
latent pixels that are decoded and thrown away (they feed the crop's border), is decoded alone
and pasted in. What that gives up, and how it is kept honest:

- **Staged decoders** (:class:`StagedDecoder` with a ``head``): a decoder whose early layers see
  the whole latent (taef2's group norms take statistics over the whole image) cannot be cropped
  there, but what follows is local. The ``head`` (the latent-resolution stage, ~2% of a decode)
  runs in full every frame and the ``tail`` runs on crops of the head's output, only where that
  output moved by more than ``threshold`` since it was last decoded. Changes below the threshold
  accumulate per position until they cross it, so nothing is left behind for good. A tail given
  as :class:`Stage` s with known reaches (TAESD: its three upsampling stages) keeps every
  stage's input for the whole frame and decodes a changed region stage by stage, each stage
  reading exactly the context its layers need from its kept input: no context is decoded and
  thrown away, and a crop's borders are exact instead of zero-padded (measured at 512 px on
  taef2: 1.2-1.4x faster than one crop through the whole tail at the same settings, and closer
  to the full decode).
- **Opaque decoders** (only ``decode(latents) -> images``, e.g. SD's KL-VAE, whose mid-block
  attention is global): decoded in full by default. ``opaque="learn"`` opts in to crops of the
  latents themselves, with a context learned at the start by comparing crop decodes against full
  decodes on a few frames and widening it until they meet the bound; no context that meets it
  means full decodes.
- **The bound**: ``min_psnr`` (dB, whole-frame PSNR against the full decode of that frame).
  Frames come out in verified spans of ``check_every`` frames: the span's last frame is decoded
  both ways and compared before the span is handed over; when the comparison misses the bound
  the whole span is decoded again in full, the settings are tightened (lower threshold, wider
  context) and after repeated misses the rest is decoded in full. The check also resets any
  drift: the full decode becomes the next span's starting frame.
- The first frame and the last frame are full decodes, the last one exactly what ``decode``
  gives for that latent alone (what a VAE Decode of the final latent shows).

Images are ComfyUI ``IMAGE`` tensors ``[n,H,W,3]`` in 0..1 on the decoder's output device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

import torch

Decoder = Callable[[torch.Tensor], torch.Tensor]

DECODE_MODES = ("full", "incremental")
OPAQUE_MODES = ("full", "learn")
# Contexts the opaque learner tries, in latent pixels; wider than a quarter of a 128-px latent
# a crop saves too little to be worth it.
LEARN_CONTEXTS = (2, 4, 8, 16, 32)
LEARN_FRAMES = 4
# Tightening steps after a failed check before falling back to full decodes for good.
MAX_TIGHTENINGS = 2
# Share of the error min_psnr allows that sub-threshold change left behind may use (the rest is
# for the crops' borders).
STALE_SHARE = 0.5
# How much closer than the bound the stages run in full must come to ``decode`` (their error is
# added to every check's).
STAGE_MARGIN_DB = 20.0
# The image error per unit of pending head-output change assumed before a full decode measures
# it: taef2 measured 0.04-0.08 at 512 px; 1.0 (the old prior) sent scattered sub-threshold
# positions to crops on the first frames of every run. An underestimate costs a missed check.
GAIN_PRIOR = 0.25
# Below this mean squared pending change a full decode says nothing about the gain.
MIN_GAIN_ENERGY = 1e-6


class IncrementalError(ValueError):
    """Bad input to the incremental decoder; the message names the input and the fix."""


@dataclass(frozen=True, eq=False)
class Stage:
    """One local piece of a staged decoder's tail, at a fixed upscale.

    run:   ``run(x [n,F,h,w]) -> [n,F',scale*h,scale*w]`` features, or for a tail's last stage
           images ``[n,scale*h,scale*w,3]``.
    scale: output pixels per input pixel.
    reach: input pixels on each side an output pixel depends on (its receptive radius), when
           known: a crop read with that much context computes the stage exactly. None = unknown;
           crops then read ``options.context`` latent pixels around and throw them away.
    """

    run: Decoder
    scale: int
    reach: int | None = None

    def __post_init__(self):
        if not callable(self.run):
            raise IncrementalError(f"incremental decoding: a stage must be callable, got {type(self.run).__name__}")
        for name, value, low in (("scale", self.scale, 1), ("reach", self.reach, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise IncrementalError(f"incremental decoding: a stage's {name} must be a whole number >= {low}, got {value!r}")


@dataclass(frozen=True, eq=False)
class StagedDecoder:
    """A decoder as incremental decoding sees it.

    decode: ``decode(latents [n,C,h,w]) -> [n,H,W,3]``, the full decode every result is held to.
    head:   ``head(latents) -> features [n,F,h,w]`` at latent resolution, run in full every frame
            (it holds whatever is global); None for an opaque decoder (the latents are the features).
    tail:   the local rest: ``tail(features crop [n,F,h',w']) -> images [n, scale*h', scale*w', 3]``
            (crops get ``options.context`` latent px of context), or a tuple of :class:`Stage` s
            whose reaches are known: each stage's input is kept for the whole frame and a changed
            region is decoded stage by stage, each reading exactly the context it needs from the
            kept input. For an opaque decoder, ``decode`` itself.
    scale:  image pixels per feature pixel (8 for TAESD and SD's VAE); None = read off the first
            full decode.
    reach:  the tail's receptive radius in feature pixels when known (TAESD: ~8), for information.
    exact_stages: the head and the tail's stages run in full are ``decode``, bit for bit (the
            pack's TAESD, tested); otherwise the first frame is decoded both ways and compared.
    """

    decode: Decoder
    head: Decoder | None = None
    tail: Decoder | tuple[Stage, ...] | None = None
    scale: int | None = None
    reach: int | None = None
    name: str = "decoder"
    exact_stages: bool = False

    def __post_init__(self):
        if not callable(self.decode):
            raise IncrementalError(f"incremental decoding: decode must be callable, got {type(self.decode).__name__}")
        if (self.head is None) != (self.tail is None):
            raise IncrementalError(
                "incremental decoding: a staged decoder needs both head and tail (or neither, for an opaque decoder)"
            )
        if self.head is not None and not callable(self.head):
            raise IncrementalError(f"incremental decoding: head must be callable, got {type(self.head).__name__}")
        if isinstance(self.tail, tuple):
            if not self.tail or not all(isinstance(stage, Stage) for stage in self.tail):
                raise IncrementalError("incremental decoding: a tail of stages must be a non-empty tuple of Stage")
            if self.scale is not None and math.prod(stage.scale for stage in self.tail) != self.scale:
                raise IncrementalError(
                    f"incremental decoding: the stages upscale {math.prod(stage.scale for stage in self.tail)}x, "
                    f"not the decoder's {self.scale}x"
                )
        elif self.tail is not None and not callable(self.tail):
            raise IncrementalError(f"incremental decoding: tail must be callable or a tuple of Stage, got {type(self.tail).__name__}")
        if self.scale is not None and (isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1):
            raise IncrementalError(f"incremental decoding: scale must be a whole number >= 1, got {self.scale!r}")

    @property
    def staged(self) -> bool:
        return self.head is not None

    def stages(self, scale: int) -> tuple[Stage, ...]:
        """The tail as stages (a callable tail, or ``decode`` for an opaque decoder, is one stage
        of unknown reach); ``scale`` is the whole decoder's, for that one stage."""
        if isinstance(self.tail, tuple):
            return self.tail
        return (Stage(self.tail or self.decode, scale),)

    @classmethod
    def opaque(cls, decode: Decoder, name: str = "VAE") -> "StagedDecoder":
        """Any ``decode(latents) -> images``: crops only through ``decode`` (see ``opaque`` options)."""
        return cls(decode=decode, name=name)

    @classmethod
    def of_taesd(cls, vae) -> "StagedDecoder":
        """The pack's :class:`~.taesd.TinyAutoencoder`: its latent-resolution stage, then its
        upsampling stages with the reaches its layers give."""
        from ..tools.taesd import SCALE, TAIL_STAGES, stage_reach

        stages = tuple(
            Stage(lambda x, start=start, stop=stop: vae.decode_layers(x, start, stop), 2, math.ceil(stage_reach(start, stop) / 2))
            for start, stop in TAIL_STAGES
        )
        return cls(
            decode=vae.decode, head=vae.decode_latent_stage, tail=stages, scale=SCALE, reach=TAESD_REACH, name=vae.name,
            exact_stages=True,
        )


# The TAESD decoder after its latent stage: at 2x one conv and three blocks (10 convs = 5 latent
# px), at 4x the same (2.5 px), at 8x a conv, a block and the last conv (5/8 px): ~8 latent px.
TAESD_REACH = 8


@dataclass(frozen=True)
class IncrementalOptions:
    """How incremental decoding trades speed for error (see the module docstring).

    min_psnr:    the bound, dB of whole-frame PSNR against the full decode; a span whose check
                 frame misses it is decoded again in full.
    threshold:   a staged decoder's head output must move by more than this (max over channels)
                 for a position to be decoded again; 0.1 measured 48 dB on taef2.
    halo:        latent pixels decoded and pasted around every changed position: how far a
                 change's effect reaches through the tail. 3, not 2: a taef2 stroke's change reaches
                 2.5-5 latent px (DESIGN §5), and with 2 the test painting's checks measured 44.8 dB
                 (a miss, the span decoded again in full); with 3 the worst check was 45.4 dB.
    context:     latent pixels decoded around the pasted region and thrown away (they feed the
                 crop's border) by a tail whose reach is unknown; for opaque decoders the starting
                 value the learner widens. Stages with known reaches read exactly those.
    check_every: frames per verified span (a full decode each); bounds drift and the frames held
                 before they are handed over.
    max_area:    share of the latent a frame's crops may cover before a full decode is cheaper
                 (a frame over it after unchecked crops is cropped anyway and checked).
    opaque:      "full" (decode every frame in full) or "learn" (crops with a learned context).
    """

    min_psnr: float = 45.0
    threshold: float = 0.1
    halo: int = 3
    context: int = 6
    check_every: int = 32
    max_area: float = 0.6
    opaque: str = "full"

    def __post_init__(self):
        where = "incremental decoding"
        if isinstance(self.min_psnr, bool) or not isinstance(self.min_psnr, (int, float)) or not 10 <= self.min_psnr <= 120:
            raise IncrementalError(f"{where}: min_psnr must be a number of dB in 10..120, got {self.min_psnr!r}; try 45")
        if not isinstance(self.threshold, (int, float)) or not math.isfinite(self.threshold) or self.threshold < 0:
            raise IncrementalError(f"{where}: threshold must be a finite number >= 0, got {self.threshold!r}; try 0.1")
        for name in ("halo", "context"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 256:
                raise IncrementalError(f"{where}: {name} must be a whole number of latent pixels in 0..256, got {value!r}")
        if isinstance(self.check_every, bool) or not isinstance(self.check_every, int) or not 2 <= self.check_every <= 4096:
            raise IncrementalError(f"{where}: check_every must be a whole number in 2..4096, got {self.check_every!r}; try 32")
        if not isinstance(self.max_area, (int, float)) or not 0 < self.max_area <= 1:
            raise IncrementalError(f"{where}: max_area must be a share in (0, 1], got {self.max_area!r}")
        if self.opaque not in OPAQUE_MODES:
            raise IncrementalError(f"{where}: opaque must be one of {', '.join(OPAQUE_MODES)}, got {self.opaque!r}")


@dataclass
class IncrementalStats:
    """What a run did (filled in as frames are handed over)."""

    frames: int = 0
    full_decodes: int = 0
    crop_decodes: int = 0
    # Sum over frames of the share of the latent the crops covered (context included).
    crop_area: float = 0.0
    checks: int = 0
    failed_checks: int = 0
    min_check_psnr: float = math.inf
    check_psnrs: list = field(default_factory=list)
    # The settings in force at the end, and why crops stopped if they did.
    options: IncrementalOptions | None = None
    fallback: str | None = None

    def summary(self) -> str:
        crop = "no crops" if self.fallback else f"crops cover {self.crop_area / max(self.frames, 1):.1%} of a frame on average"
        worst = "n/a" if not self.checks else f"{self.min_check_psnr:.1f} dB"
        text = (
            f"{self.frames} frames: {self.full_decodes} full decodes, {self.crop_decodes} crop decodes, {crop}; "
            f"{self.checks} checks against full decodes, {self.failed_checks} missed, worst {worst}"
        )
        return text + (f"; full decodes from then on: {self.fallback}" if self.fallback else "")


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    """Whole-image PSNR in dB of 0..1 images (inf when identical)."""
    return _psnr_of(_mse(image, reference))


def _mse(image: torch.Tensor, reference: torch.Tensor) -> float:
    return (image.to(torch.float64) - reference.to(torch.float64)).pow(2).mean().item()


def _psnr_of(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


# --- regions --------------------------------------------------------------------------------------


def _runs(occupied: list[bool]) -> list[tuple[int, int]]:
    """[start, stop) runs of True."""
    runs, start = [], None
    for index, value in enumerate(occupied + [False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index))
            start = None
    return runs


def changed_boxes(mask: torch.Tensor, gap: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, y1, x0, x1)`` (stop exclusive) covering the True positions of ``mask [h,w]``:
    an XY cut, splitting wherever a band of at least ``gap`` empty rows or columns runs across, so
    far-apart changes get a crop each and near ones share one (each crop pays its own context)."""
    boxes = []
    pending = [(0, mask.shape[0], 0, mask.shape[1])]
    while pending:
        y0, y1, x0, x1 = pending.pop()
        part = mask[y0:y1, x0:x1]
        rows = _merge(_runs(part.any(dim=1).tolist()), gap)
        cols = _merge(_runs(part.any(dim=0).tolist()), gap)
        if not rows:
            continue
        if len(rows) == 1 and len(cols) == 1:
            boxes.append((y0 + rows[0][0], y0 + rows[0][1], x0 + cols[0][0], x0 + cols[0][1]))
        elif len(rows) > 1:
            pending.extend((y0 + a, y0 + b, x0, x1) for a, b in rows)
        else:
            pending.extend((y0, y1, x0 + a, x0 + b) for a, b in cols)
    return boxes


def _merge(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _grow(box, by: int, height: int, width: int):
    y0, y1, x0, x1 = box
    return max(0, y0 - by), min(height, y1 + by), max(0, x0 - by), min(width, x1 + by)


def _area(box) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


# --- the decoder state ----------------------------------------------------------------------------


class _Canvas:
    """The decoded frame being kept up to date, the decoder input it shows, and each later
    stage's input (so a region can be decoded stage by stage with exact context)."""

    def __init__(self, decoder: StagedDecoder, where: str):
        self.decoder, self.where = decoder, where
        self.image: torch.Tensor | None = None
        self.shown: torch.Tensor | None = None  # head output (or latents) the image reflects, per position
        self.scale = decoder.scale
        self.stages: tuple[Stage, ...] = ()
        # inputs[k]: what stage k reads, for k >= 1 (stage 0 reads the frame's features).
        self.inputs: list[torch.Tensor | None] = []
        # Image MSE per unit of mean squared pending change, until a full decode measures it.
        self.gain, self.gain_prior = GAIN_PRIOR, True
        # MSE of the stages run in full against ``decode`` (measured on the first frame): checks
        # compare crops with the former, the bound is against the latter.
        self.stage_mse = 0.0

    def features(self, latent: torch.Tensor) -> torch.Tensor:
        head = self.decoder.head
        return latent if head is None else head(latent)

    def exact(self, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``decode`` of the frame, which becomes the image (the first and the last frame)."""
        image = self.decoder.decode(latent)
        h, w = latent.shape[-2:]
        _check_image(image, h, w, self.where)
        if self.scale is None:
            self.scale = image.shape[1] // h
        if tuple(image.shape[1:3]) != (self.scale * h, self.scale * w):
            raise IncrementalError(
                f"{self.where}: the decoder turned a {h}x{w} latent into {tuple(image.shape[1:3])} pixels, not "
                f"{self.scale}x that; incremental decoding needs a decoder with a fixed scale (use decode=full)"
            )
        if not self.stages:
            self.stages = self.decoder.stages(self.scale)
        self.image = image[0]
        self.shown = features[0].clone()
        return self.image

    def full(self, features: torch.Tensor) -> torch.Tensor:
        """Every stage run on the whole frame: the image and every stage's input are exact again."""
        self.inputs = [None]
        x = features
        for index, stage in enumerate(self.stages):
            if index:
                self.inputs.append(x)
            height, width = x.shape[-2:]
            x = stage.run(x)
            _check_stage(x, stage.scale * height, stage.scale * width, index == len(self.stages) - 1, self.where)
        self.image = x[0]
        self.shown = features[0].clone()
        return self.image

    def check_score(self, cropped: torch.Tensor, staged_full: torch.Tensor) -> float:
        """PSNR of a cropped frame against ``decode``, judged from its stages run in full: their
        difference plus the stages' own error against ``decode``, at worst adding up."""
        return _psnr_of((_mse(cropped, staged_full) ** 0.5 + self.stage_mse**0.5) ** 2)

    def pending(self, features: torch.Tensor) -> torch.Tensor:
        """``[h,w]``: how far each position's input moved since the image last showed it."""
        return (features[0] - self.shown).abs().amax(dim=0)

    def _over_budget(self, moved: torch.Tensor, options: IncrementalOptions) -> torch.Tensor:
        """The positions to decode besides those over the threshold so that what stays behind
        costs at most half the error ``min_psnr`` allows: small changes spread over the whole
        frame (a global norm shifting, a fade) add up although none crosses the threshold.
        Their cost is estimated as ``gain * mean(moved^2)``, with ``gain`` measured at full decodes."""
        energy = moved.square().flatten()
        allowed = STALE_SHARE * 10.0 ** (-options.min_psnr / 10.0) / self.gain * energy.numel()
        ordered = energy.sort().values
        # How many of the smallest changes may stay behind.
        keep = int(torch.searchsorted(ordered.cumsum(0), torch.tensor(allowed, dtype=ordered.dtype, device=ordered.device), right=True))
        if keep >= energy.numel():
            return torch.zeros_like(moved, dtype=torch.bool)
        cutoff = ordered[keep - 1] if keep > 0 else -1.0
        return moved.square() > cutoff

    def learn_gain(self, stale: torch.Tensor, exact: torch.Tensor, moved: torch.Tensor, threshold: float) -> None:
        """Update the image error per unit of pending change from a full decode and the image it
        replaced, measured only away from the changes over ``threshold`` (by the tail's reach):
        the gain stands for the sub-threshold changes crops leave behind, and strong changes (a
        stroke's) move the image less per unit of squared change, so counting them underestimated
        it (taef2 at 1024 px, frames 0-31: 0.016 learned, 0.043 measured at the span's check, which
        missed and cost the span in full; measured this way 0.055)."""
        far = ~self._near(moved > threshold)
        energy = float(moved.square()[far].sum()) / moved.numel()
        if energy > MIN_GAIN_ENERGY:
            observed = float(self._block_error(stale, exact, moved.shape)[far].sum()) / moved.numel() / energy
            # It only rises: it swings 0.02-0.15 from one full decode to the next (taef2, 1024 px,
            # frames 0-199), and an underestimate lets error through, which costs a span of full
            # decodes. Lowered by half at each full decode it missed at frame 159 (44.9 dB), lowered
            # by a tenth at frame 173 (44.5 dB); kept at its highest, no check missed (worst 46.7 dB).
            self.gain = observed if self.gain_prior else max(observed, self.gain)
            self.gain_prior = False

    def _near(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask [h,w]`` grown by the tail's reach in latent pixels (how far a change shows)."""
        reach = self.decoder.reach
        if reach is None:
            reach, factor = 0.0, 1
            for stage in self.stages:
                reach += (stage.reach if stage.reach is not None else 0) / factor
                factor *= stage.scale
            reach = math.ceil(reach)
        if reach <= 0 or not bool(mask.any()):
            return mask
        grown = torch.nn.functional.max_pool2d(mask[None, None].float(), 2 * reach + 1, stride=1, padding=reach)
        return grown[0, 0] > 0

    def _block_error(self, image: torch.Tensor, reference: torch.Tensor, size) -> torch.Tensor:
        """``[h,w]``: mean squared image difference over each latent position's pixels."""
        h, w = size
        error = (image.to(torch.float64) - reference.to(torch.float64)).pow(2).mean(-1)
        return error.reshape(h, error.shape[0] // h, w, error.shape[1] // w).mean((1, 3))

    def margin(self, context: int) -> int:
        """Latent pixels a crop reads around what it pastes."""
        first = self.stages[0].reach
        return context if first is None else first

    def step(self, features: torch.Tensor, options: IncrementalOptions, context: int) -> tuple[bool, float]:
        """Bring the image up to ``features`` by crops; returns (done, covered share). Not done
        means the crops would cost more than ``options.max_area`` and nothing was changed."""
        height, width = features.shape[-2:]
        moved = self.pending(features)
        # An opaque decoder's input is the latent itself: any change may show.
        changed = moved > (options.threshold if self.decoder.staged else 0.0)
        if self.decoder.staged:
            changed |= self._over_budget(moved, options)
        if not bool(changed.any()):
            return True, 0.0
        margin = self.margin(context)
        boxes = changed_boxes(changed, gap=2 * (options.halo + margin))
        pastes = [_grow(box, options.halo, height, width) for box in boxes]
        covered = sum(_area(_grow(paste, margin, height, width)) for paste in pastes) / (height * width)
        if covered > options.max_area:
            return False, covered
        for box, paste in zip(boxes, pastes):
            self._decode_region(features, paste, context)
            # Positions whose whole halo was decoded now show their current value; the rest keep
            # accumulating change until it crosses the threshold.
            by0, by1, bx0, bx1 = box
            self.shown[:, by0:by1, bx0:bx1] = features[0, :, by0:by1, bx0:bx1]
        return True, covered

    def _decode_region(self, features: torch.Tensor, paste, context: int) -> None:
        """Decode latent box ``paste`` stage by stage: each stage reads the box (at its input
        resolution) plus its reach from its kept input, and writes the box into the next stage's
        input, the last one into the image."""
        source, factor = features, 1
        for index, stage in enumerate(self.stages):
            reach = stage.reach if stage.reach is not None else context * factor
            height, width = source.shape[-2:]
            y0, y1, x0, x1 = (factor * v for v in paste)
            cy0, cy1, cx0, cx1 = max(0, y0 - reach), min(height, y1 + reach), max(0, x0 - reach), min(width, x1 + reach)
            out = stage.run(source[:, :, cy0:cy1, cx0:cx1].contiguous())
            s, last = stage.scale, index == len(self.stages) - 1
            _check_stage(out, s * (cy1 - cy0), s * (cx1 - cx0), last, self.where)
            rows = slice(s * (y0 - cy0), s * (y1 - cy0))
            cols = slice(s * (x0 - cx0), s * (x1 - cx0))
            if last:
                self.image[s * y0 : s * y1, s * x0 : s * x1] = out[0, rows, cols].to(self.image.device)
            else:
                source = self.inputs[index + 1]
                source[:, :, s * y0 : s * y1, s * x0 : s * x1] = out[:, :, rows, cols]
            factor *= s


def _check_stage(out, height: int, width: int, last: bool, where: str) -> None:
    if last:
        _check_crop(out, (height, width), where)
    elif not isinstance(out, torch.Tensor) or out.dim() != 4 or tuple(out.shape[-2:]) != (height, width):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise IncrementalError(
            f"{where}: a decoder stage turned its input into {shape}, expected [1,F,{height},{width}]; "
            "its scale is not what the stage says (use decode=full)"
        )


def _check_image(image, h: int, w: int, where: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise IncrementalError(
            f"{where}: the decoder turned one {h}x{w} latent into {shape}, expected [1,H,W,3]; use an image VAE"
        )


def _check_crop(image, size: tuple[int, int], where: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or tuple(image.shape[1:3]) != size or image.shape[-1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise IncrementalError(
            f"{where}: the decoder turned a crop into {shape}, expected [1,{size[0]},{size[1]},3]; "
            "it does not decode crops at a fixed scale (use decode=full)"
        )


# --- inputs ---------------------------------------------------------------------------------------


def _frames(latents, where: str) -> Iterator[tuple[torch.Tensor, bool]]:
    """Single frames ``[1,C,h,w]`` of a tensor or of an iterable of chunks, each with whether it
    is the last one (so the last frame can be decoded in full)."""
    if isinstance(latents, torch.Tensor):
        chunks: Iterable = (latents,)
    elif isinstance(latents, Iterable):
        chunks = latents
    else:
        raise IncrementalError(f"{where}: frames must be latents [N,C,h,w] or chunks of them, got {type(latents).__name__}")
    shape = None
    previous = None
    count = 0
    for chunk in chunks:
        if not isinstance(chunk, torch.Tensor) or chunk.dim() != 4:
            got = tuple(chunk.shape) if isinstance(chunk, torch.Tensor) else type(chunk).__name__
            raise IncrementalError(f"{where}: frames must be latents [N,C,h,w], got {got}")
        if shape is None:
            shape = tuple(chunk.shape[1:])
            if chunk.shape[2] < 1 or chunk.shape[3] < 1 or chunk.shape[1] < 1:
                raise IncrementalError(f"{where}: frames have an empty shape {tuple(chunk.shape)}")
        elif tuple(chunk.shape[1:]) != shape:
            raise IncrementalError(
                f"{where}: a chunk of frames has shape {tuple(chunk.shape[1:])} after {shape}; all frames must share one latent shape"
            )
        if not chunk.is_floating_point() or not bool(torch.isfinite(chunk).all()):
            raise IncrementalError(f"{where}: frames hold NaN/inf or are not floating point; repaint them")
        for index in range(chunk.shape[0]):
            if previous is not None:
                yield previous, False
            previous = chunk[index : index + 1].contiguous()
            count += 1
    if previous is None:
        raise IncrementalError(f"{where}: no frames to decode; paint at least one frame")
    yield previous, True


# --- the decoder ----------------------------------------------------------------------------------


def decode_incremental(
    decoder: StagedDecoder,
    latents,
    options: IncrementalOptions = IncrementalOptions(),
    *,
    stats: IncrementalStats | None = None,
    where: str = "incremental decoding",
) -> Iterator[torch.Tensor]:
    """Decode frames, yielding verified chunks ``[n,H,W,3]`` (n <= ``options.check_every``).

    latents: ``[N,C,h,w]`` or an iterable of such chunks (consumed lazily, one chunk ahead).
    Every yielded chunk ends on a frame decoded in full and compared with what the crops gave
    (see the module docstring); the first and the last frame are full decodes. ``stats`` is
    filled in as chunks are handed over.
    """
    if not isinstance(decoder, StagedDecoder):
        raise IncrementalError(f"{where}: decoder must be a StagedDecoder, got {type(decoder).__name__}")
    if not isinstance(options, IncrementalOptions):
        raise IncrementalError(f"{where}: options must be IncrementalOptions, got {type(options).__name__}")
    stats = stats if stats is not None else IncrementalStats()
    stats.options = options
    run = _Run(crops=decoder.staged or options.opaque == "learn", options=options, context=options.context)
    if not run.crops:
        stats.fallback = f"{decoder.name} is opaque (global layers possible) and opaque='full'"
    canvas = _Canvas(decoder, where)
    span: list[torch.Tensor] = []
    span_latents: list[torch.Tensor] = []
    # Opaque crops: the smallest passing context of each sampled frame; the widest one is used.
    learning = [] if run.crops and not decoder.staged else None
    frames = _frames(latents, where)

    with torch.inference_mode():
        for latent, last in frames:
            features = canvas.features(latent)
            first = canvas.image is None
            closes_span = last or len(span) + 1 >= run.options.check_every
            if learning is not None and not first and not last:
                needed, reason = _learn_context(canvas, latent, features, run.options)
                stats.full_decodes += 1
                if needed is None:
                    run.crops, learning, stats.fallback = False, None, reason
                elif needed >= 0:
                    learning.append(needed)
                    if len(learning) >= LEARN_FRAMES:
                        run.context, learning = max(learning), None
                        stats.options = replace(run.options, context=run.context)
            elif first and run.crops and decoder.exact_stages and not last:
                canvas.scale, canvas.stages = decoder.scale, decoder.stages(decoder.scale)
                canvas.full(features)
                stats.full_decodes += 1
            elif first:
                canvas.exact(latent, features)
                stats.full_decodes += 1
                if run.crops and canvas.stages[0].run is not decoder.decode:
                    run.crops = _trust_stages(canvas, features, run.options, stats)
            else:
                _next_frame(canvas, run, latent, features, last, closes_span, span, span_latents, stats)
            span.append(canvas.image.clone())
            span_latents.append(latent)
            run.features = features
            stats.frames += 1
            if closes_span:
                yield torch.stack(span)
                span.clear()
                span_latents.clear()


def _trust_stages(canvas: _Canvas, features, options: IncrementalOptions, stats: IncrementalStats) -> bool:
    """Whether the tail's stages, run in full on the first frame, reproduce ``decode`` closely
    enough for checks against them to stand for checks against ``decode``; their error is
    remembered and added to every check."""
    exact = canvas.image
    staged = canvas.full(features)
    stats.full_decodes += 1
    canvas.stage_mse = _mse(staged, exact)
    canvas.image = exact
    score = _psnr_of(canvas.stage_mse)
    if score < options.min_psnr + STAGE_MARGIN_DB:
        stats.fallback = (
            f"the decoder's stages run in full give {score:.1f} dB against its decode, not the "
            f"{options.min_psnr + STAGE_MARGIN_DB:g} dB crops need"
        )
        return False
    return True


@dataclass
class _Run:
    """What a run of :func:`decode_incremental` changes as it goes."""

    crops: bool
    options: IncrementalOptions
    context: int
    # Whether the image holds crop output no check has seen yet.
    unverified: bool = False
    tightenings: int = 0
    # The previous frame's decoder input (head output), for a check of it without a second head run.
    features: torch.Tensor | None = None


def _next_frame(canvas: _Canvas, run: _Run, latent, features, last: bool, closes_span: bool, span: list,
                span_latents: list, stats: IncrementalStats) -> None:
    """Bring the canvas to a frame after the first: crops, or a full decode when they would cover
    too much, the frame's check when it closes a span, and what a missed check costs (the span
    decoded again in full, tighter settings)."""
    decoder = canvas.decoder
    covered = 0.0
    done = False
    if decoder.staged:
        # The frame as it stands before this step, to measure what pending change costs.
        stale, moved = canvas.image.clone(), canvas.pending(features)
    if run.crops:
        done, covered = canvas.step(features, run.options, run.context)
    if not done and run.unverified and span:
        # A frame too large for crops ends the crops' run; crops no check has seen lead up to it,
        # so the last of them is checked against its own full decode. (Checking this frame cropped
        # instead hid their error when its crops covered the whole frame: a whole-frame crop is a
        # full decode, and a frame at 43 dB went through.)
        previous = run.features
        if decoder.staged:
            moved = canvas.pending(previous)
        exact = canvas.full(previous)
        stats.full_decodes += 1
        if decoder.staged:
            canvas.learn_gain(stale, exact, moved, run.options.threshold)
        _record_check(canvas, run, canvas.check_score(span[-1], exact), span, span_latents, stats)
        run.unverified = False
        # Counted from that full decode, only this frame's own change is pending, which is often
        # small enough for crops (what made the frame too large was change left behind before it).
        if run.crops:
            if decoder.staged:
                stale, moved = canvas.image.clone(), canvas.pending(features)
            done, covered = canvas.step(features, run.options, run.context)
    score = None
    if done and closes_span:
        guess = canvas.image.clone()
        if last:
            exact = canvas.exact(latent, features)
            score = psnr(guess, exact)
        else:
            # Against the stages run in full, which also renews every stage's input.
            exact = canvas.full(features)
            score = canvas.check_score(guess, exact)
        stats.full_decodes += 1
    elif not done:
        exact = canvas.exact(latent, features) if last or not run.crops else canvas.full(features)
        stats.full_decodes += 1
    else:
        stats.crop_decodes += covered > 0
        stats.crop_area += covered
    run.unverified = score is None and done and (run.unverified or covered > 0)
    if decoder.staged and (score is not None or not done):
        canvas.learn_gain(stale, exact, moved, run.options.threshold)
    if score is not None:
        _record_check(canvas, run, score, span, span_latents, stats)


def _record_check(canvas: _Canvas, run: _Run, score: float, span: list, span_latents: list,
                  stats: IncrementalStats) -> None:
    """Count a check of the span's frames so far; when it misses the bound, decode the span again
    in full and tighten the settings (after repeated misses, full decodes from then on)."""
    options = run.options
    stats.checks += 1
    stats.check_psnrs.append(score)
    stats.min_check_psnr = min(stats.min_check_psnr, score)
    if score >= options.min_psnr:
        return
    stats.failed_checks += 1
    # The span already decoded may be off by as much: decode it again in full.
    span[:] = [canvas.decoder.decode(previous)[0] for previous in span_latents]
    stats.full_decodes += len(span)
    run.tightenings += 1
    if run.tightenings > MAX_TIGHTENINGS:
        run.crops = False
        stats.fallback = f"crops missed {options.min_psnr:g} dB {run.tightenings} times (last {score:.1f} dB)"
    else:
        run.options = replace(options, threshold=options.threshold / 2, halo=options.halo + 1)
        run.context += 2
        stats.options = replace(run.options, context=run.context)


def _learn_context(canvas: _Canvas, latent, features, options: IncrementalOptions):
    """The narrowest context with which a crop decode of this frame, started from the decode of
    the previous one, meets ``min_psnr`` against its full decode: ``(context, None)``; ``(-1,
    None)`` when nothing changed (nothing learned); ``(None, why)`` when no context does. Leaves
    the canvas on the full decode of ``latent``."""
    start_image, start_shown = canvas.image.clone(), canvas.shown.clone()
    exact = canvas.exact(latent, features).clone()
    tried = []
    found = None
    for context in sorted({options.context, *(c for c in LEARN_CONTEXTS if c >= options.context)}):
        canvas.image, canvas.shown = start_image.clone(), start_shown.clone()
        done, covered = canvas.step(features, options, context)
        if not done:
            # Too much changed to crop at all: this frame teaches nothing.
            found = -1 if not tried else None
            tried.append(f"{context} px: crops cover {covered:.0%}")
            break
        if covered == 0:
            found = -1
            break
        score = psnr(canvas.image, exact)
        tried.append(f"{context} px: {score:.1f} dB")
        if score >= options.min_psnr:
            found = context
            break
    canvas.image, canvas.shown = exact, features[0].clone()
    if found is None:
        return None, f"no crop context met {options.min_psnr} dB on a frame ({'; '.join(tried)})"
    return found, None


def decode_all(decoder: StagedDecoder, latents, options: IncrementalOptions = IncrementalOptions(), **kwargs) -> torch.Tensor:
    """:func:`decode_incremental` gathered into one ``[N,H,W,3]`` tensor (for tests and small runs)."""
    return torch.cat(list(decode_incremental(decoder, latents, options, **kwargs)))


__all__ = [
    "DECODE_MODES",
    "IncrementalError",
    "IncrementalOptions",
    "IncrementalStats",
    "StagedDecoder",
    "changed_boxes",
    "decode_all",
    "decode_incremental",
    "psnr",
]
