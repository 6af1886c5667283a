"""The staged strategy: decoders made of local layers (the TAESD family) decoded where a frame changed.

A painted frame differs from the one before only around one stroke, yet a full decode costs the same
for every frame. A decoder given as a sequence of :class:`Layer` s is split into a *head*, everything
before the first upsampling (it runs in full every frame: ~2% of a TAESD decode, and it holds any
layer that sees the whole frame, such as taef2's group norms), and *stages*, one per upsampling.
Every stage's input is kept for the whole frame. Where the head's output moved by more than
``threshold`` since it was last decoded, a region (widened by ``halo``) is decoded stage by stage,
each stage reading exactly the context its layers reach from its kept input, and pasted into the
image: no context is decoded and thrown away, and a crop's borders are those of the full decode.

Changes below the threshold pile up per position until they cross it or until what they would leave
behind, estimated from the image error per unit of pending change measured at full decodes, exceeds
a quarter of the error the bound allows (small changes spread over the whole frame, as a fade makes,
add up although none crosses the threshold). Measured on taef2 at 512 px (benchmarks/bench_incremental.py,
1000 frames): 3.19x the speed of full decodes, every frame compared above 54 dB, the last identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from einops import reduce

from .regions import area, changed_boxes, grown
from .spans import IncrementalError, IncrementalOptions, check_image, mse, psnr_of
from .strategies import Strategy, incremental

# The image error per unit of pending head-output change assumed before a full decode measures it:
# taef2 measured 0.04-0.08 at 512 px; an underestimate costs a missed check.
GAIN_PRIOR = 0.25
# The least reading that counts as a measured gain. A full decode can equal the stale image away from
# the changes (a saturated image: white paper clamps to 1), which reads a gain of 0; that says the
# pending change was hidden there, not that later change will be, and a gain near 0 would let
# unlimited change stay stale (a gain of exactly 0 was divided by: the demo crashed on an AMD EPYC).
# taef2 read 0.04-0.08 at 512 px and 0.043-0.055 at 1024 px wherever the image was not saturated.
GAIN_FLOOR = 0.04
# Below this mean squared pending change a full decode says nothing about the gain.
MIN_GAIN_ENERGY = 1e-6
# Share of the error min_psnr allows that sub-threshold change left behind may use by its estimate.
# The gain one pattern of change taught reads 2-3x low on another (clamped toy decoders, new
# hypothesis draws: frames between checks at 42.3-44.9 dB with a share of 0.5); a quarter leaves
# 6 dB for that, and spans.VERIFY_MARGIN_DB measures the frame nearest the bound.
STALE_SHARE = 0.25
# How much closer than the bound the stages run in full must come to ``decode`` (their error is added
# to every check's).
STAGE_MARGIN_DB = 20.0


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a decoder as the staged strategy sees it.

    run:   ``run(x [n,F,h,w]) -> [n,F',scale*h,scale*w]``; the last layer returns the IMAGE
           ``[n,H,W,3]`` in 0..1.
    scale: output pixels per input pixel (an upsampling: 2).
    reach: input pixels on each side that an output pixel depends on (a 3x3 convolution: 1).
    whole: it reads the whole frame (a group norm's statistics, attention): it cannot be cropped.
    """

    run: Callable[[torch.Tensor], torch.Tensor]
    scale: int = 1
    reach: int = 0
    whole: bool = False


@dataclass(frozen=True, eq=False)
class Stage:
    """Consecutive layers starting at an upsampling: ``run``, its ``scale``, and its ``reach`` in its
    input's pixels (a crop read with that much context is computed exactly)."""

    run: Callable[[torch.Tensor], torch.Tensor]
    scale: int
    reach: int


@dataclass(frozen=True)
class StagedSettings:
    """threshold: how far (largest over channels) the head's output must move at a position for it
    to be decoded again; 0.1 measured 48 dB on taef2.
    halo:      latent pixels decoded around every such position: how far a change's effect reaches
               through the stages. 3, not 2: a taef2 stroke's change reaches 2.5-5 latent px, and
               with 2 the test painting's checks measured 44.8 dB; with 3 the worst was 45.4 dB.
    max_area:  share of the latent a frame's crops may cover before a full decode is cheaper."""

    threshold: float = 0.1
    halo: int = 3
    max_area: float = 0.6


def _chain(layers) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x):
        for layer in layers:
            x = layer.run(x)
        return x

    return run


def split(layers: tuple[Layer, ...]) -> tuple[Callable, tuple[Stage, ...]] | str:
    """``(head, stages)`` of a decoder's layers, or why they cannot be split."""
    ups = [index for index, layer in enumerate(layers) if layer.scale > 1]
    if not ups:
        return "the decoder never upsamples, so it has no stages to crop"
    late = [index for index, layer in enumerate(layers) if layer.whole and index > ups[0]]
    if late:
        return "a layer after the first upsampling reads the whole frame (a norm or attention), so no crop is exact"
    stages = []
    for start, stop in zip(ups, ups[1:] + [len(layers)]):
        reach, factor = 0.0, 1
        for layer in layers[start:stop]:
            reach += layer.reach / factor
            factor *= layer.scale
        stages.append(Stage(_chain(layers[start:stop]), factor, math.ceil(reach - 1e-9)))
    return _chain(layers[: ups[0]]), tuple(stages)


class StagedCanvas:
    """The decoded frame kept up to date, the head output it shows, and each stage's kept input."""

    start_decodes = 1

    def __init__(self, decode, head, stages: tuple[Stage, ...], options: IncrementalOptions,
                 settings: StagedSettings, exact: bool):
        self.decode, self.head, self.stages = decode, head, stages
        self.options, self.settings, self.exact = options, settings, exact
        self.scale = math.prod(stage.scale for stage in stages)
        self.reach = math.ceil(sum(stage.reach / math.prod(s.scale for s in stages[:k]) for k, stage in enumerate(stages)))
        self.image: torch.Tensor | None = None
        self.shown: torch.Tensor | None = None  # head output the image reflects, per position
        self.inputs: list[torch.Tensor | None] = []  # inputs[k]: what stage k reads, k >= 1
        self.gain, self.gain_prior = GAIN_PRIOR, True  # image MSE per unit of mean squared pending change
        self.gain_hidden = False  # readings so far only found the change hidden: the gain stands in
        self.stage_mse = 0.0  # the stages run in full against decode (measured on the first frame)
        self.fallback: str | None = None
        self.changed = 0.0
        self.pending = 0.0  # mean squared head-output change the last frame left stale
        if not exact:
            self.start_decodes = 2

    # --- the protocol of spans.decode_verified ------------------------------------------------

    def start(self, latent):
        features = self.head(latent)
        if self.exact:  # the stages run in full are decode, bit for bit (the pack's own TAESD, tested)
            return self._full(features)
        image = self._decoded(latent)
        staged = self._full(features)
        self.stage_mse = mse(staged, image)
        self.image = image
        score, wanted = psnr_of(self.stage_mse), self.options.min_psnr + STAGE_MARGIN_DB
        if score < wanted:
            self.fallback = f"the decoder's stages run in full give {score:.1f} dB against its decode, not the {wanted:g} dB crops need"
        return self.image

    def advance(self, latent):
        features = self.head(latent)
        moved = self._pending(features)
        height, width = features.shape[-2:]
        changed = (moved > self.settings.threshold) | self._over_budget(moved)
        self.changed = 0.0
        if not bool(changed.any()):
            self.pending = float(moved.square().mean())
            return self.image
        margin = self.stages[0].reach
        boxes = changed_boxes(changed, gap=2 * (self.settings.halo + margin))
        pastes = [grown(box, self.settings.halo, height, width) for box in boxes]
        covered = sum(area(grown(paste, margin, height, width)) for paste in pastes) / (height * width)
        if covered > self.settings.max_area:
            return None
        for box, paste in zip(boxes, pastes):
            self._decode_region(features, paste)
            # Positions whose whole halo was decoded now show their current value; the rest keep
            # accumulating change until it crosses the threshold.
            y0, y1, x0, x1 = box
            self.shown[:, y0:y1, x0:x1] = features[0, :, y0:y1, x0:x1]
        self.changed = covered
        self.pending = float(self._pending(features).square().mean())
        return self.image

    def restart(self, latent):
        features = self.head(latent)
        stale, moved = self.image.clone(), self._pending(features)
        self._full(features)
        self._learn_gain(stale, moved, self.image)
        return self.image

    def learn(self, latent, reference):
        self._learn_gain(self.image, self._pending(self.head(latent)), reference[0] if reference.dim() == 4 else reference)

    def learn_stale(self, image, pending: float, reference) -> None:
        """The gain a frame that left ``pending`` stale shows: all of its error is put down to it
        (``mse`` takes ``reference`` as ``[H,W,3]`` or ``[1,H,W,3]`` alike)."""
        if pending > MIN_GAIN_ENERGY:
            self._raise_gain(mse(image, reference) / pending)

    def stale_psnr(self, pending: float) -> float:
        """Until a full decode has measured the gain, the canvas knows nothing of what stale change
        shows (the prior holds for taef2, not for every decoder): such a frame is judged as failing,
        and decoded again. Hypothesis found a painting whose checks all saw nothing pending (it went
        back to an earlier frame), so the prior stood and a drift at a zero-padded corner, estimated
        at 49 dB, measured 44.98."""
        if pending <= 0:
            return math.inf
        if self.gain_prior:
            return -math.inf
        return psnr_of(((self.gain * pending) ** 0.5 + self.stage_mse**0.5) ** 2)

    def score(self, guess, reference):
        """The difference from the stages run in full plus their own error against ``decode``, at
        worst adding up."""
        return psnr_of((mse(guess, reference) ** 0.5 + self.stage_mse**0.5) ** 2)

    def tighten(self) -> bool:
        self.settings = replace(self.settings, threshold=self.settings.threshold / 2, halo=self.settings.halo + 1)
        return True

    # --- decoding ---------------------------------------------------------------------------------

    def _decoded(self, latent):
        image = check_image(self.decode(latent), *latent.shape[-2:])
        if image.shape[1] != self.scale * latent.shape[-2]:
            raise IncrementalError(f"the decoder upscales {image.shape[1] // latent.shape[-2]}x but its layers "
                                   f"{self.scale}x; they are not the same decoder (use decode=full)")
        return image[0]

    def _full(self, features):
        """Every stage on the whole frame: the image and every stage's input are exact again."""
        self.inputs = [None]
        x = features
        for index, stage in enumerate(self.stages):
            if index:
                self.inputs.append(x)
            height, width = x.shape[-2:]
            x = stage.run(x)
            _check_stage(x, stage.scale * height, stage.scale * width, index == len(self.stages) - 1)
        self.image = x[0]
        self.shown = features[0].clone()
        return self.image

    def _decode_region(self, features, paste) -> None:
        """Decode latent box ``paste`` stage by stage: each stage reads the box (at its input
        resolution) plus its reach from its kept input, and writes the box into the next stage's
        input, the last one into the image."""
        source, factor = features, 1
        for index, stage in enumerate(self.stages):
            height, width = source.shape[-2:]
            y0, y1, x0, x1 = (factor * v for v in paste)
            cy0, cy1, cx0, cx1 = grown((y0, y1, x0, x1), stage.reach, height, width)
            out = stage.run(source[:, :, cy0:cy1, cx0:cx1].contiguous())
            s, last = stage.scale, index == len(self.stages) - 1
            _check_stage(out, s * (cy1 - cy0), s * (cx1 - cx0), last)
            rows, cols = slice(s * (y0 - cy0), s * (y1 - cy0)), slice(s * (x0 - cx0), s * (x1 - cx0))
            if last:
                self.image[s * y0 : s * y1, s * x0 : s * x1] = out[0, rows, cols].to(self.image.device)
            else:
                source = self.inputs[index + 1]
                source[:, :, s * y0 : s * y1, s * x0 : s * x1] = out[:, :, rows, cols]
            factor *= s

    # --- what sub-threshold change leaves behind --------------------------------------------------

    def _pending(self, features):
        """``[h,w]``: how far each position's head output moved since the image last showed it."""
        return (features[0] - self.shown).abs().amax(dim=0)

    def _over_budget(self, moved):
        """The positions to decode besides those over the threshold so that what stays behind costs
        at most STALE_SHARE of the error the bound allows, estimated as ``gain * mean(moved^2)``."""
        energy = moved.square().flatten()
        allowed = STALE_SHARE * 10.0 ** (-self.options.min_psnr / 10.0) / self.gain * energy.numel()
        ordered = energy.sort().values
        keep = int(torch.searchsorted(ordered.cumsum(0), torch.tensor(allowed, dtype=ordered.dtype,
                                                                      device=ordered.device), right=True))
        if keep >= energy.numel():
            return torch.zeros_like(moved, dtype=torch.bool)
        cutoff = ordered[keep - 1] if keep > 0 else -1.0
        return moved.square() > cutoff

    def _learn_gain(self, stale, moved, reference) -> None:
        """The image error per unit of pending change, from a full decode and the image it replaced,
        measured away from the changes over the threshold (by the stages' reach): the gain stands
        for the sub-threshold change crops leave behind, and a stroke's strong change moves the image
        less per unit of squared change (taef2 at 1024 px, frames 0-31: 0.016 learned with it, 0.043
        measured at the span's check, which missed; 0.055 measured this way). It only rises: it
        swings 0.02-0.15 from one full decode to the next, and an underestimate lets error through
        (lowered at each full decode, checks missed at frames 159 and 173; kept at its highest, the
        worst check was 46.7 dB)."""
        far = ~self._near(moved > self.settings.threshold)
        energy = float(moved.square()[far].sum()) / moved.numel()
        if energy > MIN_GAIN_ENERGY:
            self._raise_gain(float(_block_error(stale, reference, moved.shape)[far].sum()) / moved.numel() / energy)

    def _raise_gain(self, observed: float) -> None:
        """A reading under GAIN_FLOOR says the change was hidden where it was measured (white paper
        clamps the image to 1), not that change elsewhere will be: it only ends the prior, and the
        gain stands in at GAIN_PRIOR until a reading shows the change (a painting that left white
        paper showed 7.6x the error a floored reading estimated)."""
        if observed < GAIN_FLOOR:
            if self.gain_prior or self.gain_hidden:
                self.gain, self.gain_prior, self.gain_hidden = GAIN_PRIOR, False, True
            return
        self.gain = observed if self.gain_prior or self.gain_hidden else max(observed, self.gain)
        self.gain_prior = self.gain_hidden = False

    def _near(self, mask):
        """``mask [h,w]`` grown by the stages' reach in latent pixels (how far a change shows)."""
        if self.reach <= 0 or not bool(mask.any()):
            return mask
        pooled = F.max_pool2d(mask[None, None].float(), 2 * self.reach + 1, stride=1, padding=self.reach)
        return pooled[0, 0] > 0


def _block_error(image, reference, size):
    """``[h,w]``: mean squared image difference over each latent position's pixels."""
    h, w = size
    error = (image.to(torch.float64) - reference.to(torch.float64)).pow(2)
    return reduce(error, "(h py) (w px) rgb -> h w", "mean", h=h, w=w)


def _check_stage(out, height: int, width: int, last: bool) -> None:
    if last:
        ok = isinstance(out, torch.Tensor) and out.dim() == 4 and tuple(out.shape[1:]) == (height, width, 3)
        want = f"[1,{height},{width},3]"
    else:
        ok = isinstance(out, torch.Tensor) and out.dim() == 4 and tuple(out.shape[-2:]) == (height, width)
        want = f"[1,F,{height},{width}]"
    if not ok:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise IncrementalError(f"a decoder stage turned its input into {shape}, expected {want}; its layers do not "
                               "say what the decoder does (use decode=full)")


def start_staged(view, options: IncrementalOptions, shape, settings: StagedSettings = StagedSettings()):
    """A :class:`StagedCanvas` for a decoder given as layers and latents of ``shape``, or why there is none."""
    if view.layers is None:
        return "its structure is not known as layers (only the TAESD family is)"
    parts = split(view.layers)
    if isinstance(parts, str):
        return parts
    head, stages = parts
    side = 1 + 2 * (settings.halo + stages[0].reach)  # the smallest crop: one position changed
    if side * side > settings.max_area * shape[-2] * shape[-1]:
        return f"a {shape[-2]}x{shape[-1]} latent is too small for crops (the smallest covers {side}x{side})"
    return StagedCanvas(view.decode, head, stages, options, settings, exact=view.exact)


def staged_strategy(settings: StagedSettings = StagedSettings()) -> Strategy:
    """The staged strategy with ``settings`` (the registry's has the defaults)."""
    return Strategy("staged", incremental(partial(start_staged, settings=settings)),
                    "TAESD family: the latent-resolution stage in full, the upsampling stages only where its output "
                    "changed, each reading exactly the context its layers need")


STRATEGY = staged_strategy()

__all__ = ["Layer", "Stage", "StagedCanvas", "StagedSettings", "split", "start_staged", "staged_strategy"]
