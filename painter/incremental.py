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
  accumulate per position until they cross it, so nothing is left behind for good.
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
# Below this mean squared pending change a full decode says nothing about the gain.
MIN_GAIN_ENERGY = 1e-6


class IncrementalError(ValueError):
    """Bad input to the incremental decoder; the message names the input and the fix."""


@dataclass(frozen=True, eq=False)
class StagedDecoder:
    """A decoder as incremental decoding sees it.

    decode: ``decode(latents [n,C,h,w]) -> [n,H,W,3]``, the full decode every result is held to.
    head:   ``head(latents) -> features [n,F,h,w]`` at latent resolution, run in full every frame
            (it holds whatever is global); None for an opaque decoder (the latents are the features).
    tail:   ``tail(features crop [n,F,h',w']) -> images [n, scale*h', scale*w', 3]``, the local rest;
            for an opaque decoder, ``decode`` itself.
    scale:  image pixels per feature pixel (8 for TAESD and SD's VAE); None = read off the first
            full decode.
    reach:  the tail's receptive radius in feature pixels when known (TAESD: ~8); crops of an
            opaque decoder need a learned context instead.
    """

    decode: Decoder
    head: Decoder | None = None
    tail: Decoder | None = None
    scale: int | None = None
    reach: int | None = None
    name: str = "decoder"

    def __post_init__(self):
        if not callable(self.decode):
            raise IncrementalError(f"incremental decoding: decode must be callable, got {type(self.decode).__name__}")
        if (self.head is None) != (self.tail is None):
            raise IncrementalError(
                "incremental decoding: a staged decoder needs both head and tail (or neither, for an opaque decoder)"
            )
        for name in ("head", "tail"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise IncrementalError(f"incremental decoding: {name} must be callable, got {type(value).__name__}")
        if self.scale is not None and (isinstance(self.scale, bool) or not isinstance(self.scale, int) or self.scale < 1):
            raise IncrementalError(f"incremental decoding: scale must be a whole number >= 1, got {self.scale!r}")

    @property
    def staged(self) -> bool:
        return self.head is not None

    @classmethod
    def opaque(cls, decode: Decoder, name: str = "VAE") -> "StagedDecoder":
        """Any ``decode(latents) -> images``: crops only through ``decode`` (see ``opaque`` options)."""
        return cls(decode=decode, name=name)

    @classmethod
    def of_taesd(cls, vae) -> "StagedDecoder":
        """The pack's :class:`~.taesd.TinyAutoencoder`, split after its latent-resolution stage."""
        from .taesd import SCALE

        return cls(
            decode=vae.decode, head=vae.decode_latent_stage, tail=vae.decode_rest, scale=SCALE, reach=TAESD_REACH,
            name=vae.name,
        )


# The TAESD decoder after its latent stage: at 2x one conv and three blocks (10 convs = 5 latent
# px), at 4x the same (2.5 px), at 8x a conv, a block and the last conv (5/8 px): ~8 latent px.
TAESD_REACH = 8


def sequential_stages(modules) -> tuple[Callable, Callable]:
    """Split a TAESD-style ``nn.Sequential`` decoder (ComfyUI's ``comfy.taesd.taesd.Decoder``) at
    its first ``nn.Upsample``: ``(head, tail)``, each running its modules on an NCHW tensor."""
    from torch import nn

    if not isinstance(modules, nn.Sequential):
        raise IncrementalError(f"incremental decoding: expected an nn.Sequential decoder, got {type(modules).__name__}")
    layers = list(modules)
    split = next((i for i, layer in enumerate(layers) if isinstance(layer, nn.Upsample)), None)
    if split is None or split == 0:
        raise IncrementalError(
            "incremental decoding: the decoder has no nn.Upsample after a latent-resolution stage; "
            "it is not a TAESD-style decoder, decode it as an opaque one"
        )
    head, tail = nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:])
    return head, tail


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
                 crop's border); for opaque decoders the starting value the learner widens.
    check_every: frames per verified span (a full decode each); bounds drift and the frames held
                 before they are handed over.
    max_area:    share of the latent a frame's crops may cover before a full decode is cheaper.
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
    mse = (image.to(torch.float64) - reference.to(torch.float64)).pow(2).mean().item()
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
    """The decoded frame being kept up to date, and the decoder input it shows."""

    def __init__(self, decoder: StagedDecoder, where: str):
        self.decoder, self.where = decoder, where
        self.image: torch.Tensor | None = None
        self.shown: torch.Tensor | None = None  # head output (or latents) the image reflects, per position
        self.scale = decoder.scale
        # Image MSE per unit of mean squared pending change; conservative until measured.
        self.gain, self.gain_prior = 1.0, True

    def features(self, latent: torch.Tensor) -> torch.Tensor:
        head = self.decoder.head
        return latent if head is None else head(latent)

    def full(self, latent: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
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
        self.image = image[0]
        self.shown = features[0].clone()
        return self.image

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

    def learn_gain(self, stale: torch.Tensor, exact: torch.Tensor, moved: torch.Tensor) -> None:
        """Update the image error per unit of pending change from a full decode and the image it replaced."""
        energy = float(moved.square().mean())
        if energy > MIN_GAIN_ENERGY:
            observed = float((stale.to(torch.float64) - exact.to(torch.float64)).pow(2).mean()) / energy
            # Up at once, down slowly: an underestimate would let error through.
            self.gain = observed if self.gain_prior else max(observed, 0.5 * self.gain)
            self.gain_prior = False

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
        margin = options.halo + context
        boxes = changed_boxes(changed, gap=2 * margin)
        crops = [_grow(box, margin, height, width) for box in boxes]
        covered = sum(_area(crop) for crop in crops) / (height * width)
        if covered > options.max_area:
            return False, covered
        scale = self.scale
        for box, crop in zip(boxes, crops):
            paste = _grow(box, options.halo, height, width)
            y0, y1, x0, x1 = crop
            decoded = (self.decoder.tail or self.decoder.decode)(features[:, :, y0:y1, x0:x1].contiguous())
            _check_crop(decoded, (scale * (y1 - y0), scale * (x1 - x0)), self.where)
            py0, py1, px0, px1 = paste
            self.image[scale * py0 : scale * py1, scale * px0 : scale * px1] = decoded[
                0, scale * (py0 - y0) : scale * (py1 - y0), scale * (px0 - x0) : scale * (px1 - x0)
            ].to(self.image.device)
            # Positions whose whole halo was decoded now show their current value; the rest keep
            # accumulating change until it crosses the threshold.
            by0, by1, bx0, bx1 = box
            self.shown[:, by0:by1, bx0:bx1] = features[0, :, by0:by1, bx0:bx1]
        return True, covered


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
    crops = decoder.staged or options.opaque == "learn"
    if not crops:
        stats.fallback = f"{decoder.name} is opaque (global layers possible) and opaque='full'"
    context = options.context
    canvas = _Canvas(decoder, where)
    tightenings = 0
    span: list[torch.Tensor] = []
    span_latents: list[torch.Tensor] = []
    # Opaque crops: the smallest passing context of each sampled frame; the widest one is used.
    learning = [] if crops and not decoder.staged else None
    unverified = False
    frames = _frames(latents, where)

    with torch.inference_mode():
        for latent, last in frames:
            features = canvas.features(latent)
            first = canvas.image is None
            closes_span = last or len(span) + 1 >= options.check_every
            if learning is not None and not first and not last:
                needed, reason = _learn_context(canvas, latent, features, options)
                stats.full_decodes += 1
                if needed is None:
                    crops, learning, stats.fallback = False, None, reason
                elif needed >= 0:
                    learning.append(needed)
                    if len(learning) >= LEARN_FRAMES:
                        context, learning = max(learning), None
                        stats.options = replace(options, context=context)
                span.append(canvas.image.clone())
                span_latents.append(latent)
                stats.frames += 1
                if closes_span:
                    yield torch.stack(span)
                    span, span_latents = [], []
                continue
            covered = 0.0
            done = False
            if not first and decoder.staged:
                # The frame as it stands before this step, to measure what pending change costs.
                stale, moved = canvas.image.clone(), canvas.pending(features)
            if crops and not first:
                done, covered = canvas.step(features, options, context)
            score = None
            if done and closes_span:
                guess = canvas.image.clone()
                exact = canvas.full(latent, features)
                stats.full_decodes += 1
                score = psnr(guess, exact)
            elif not done:
                exact = canvas.full(latent, features)
                stats.full_decodes += 1
                if unverified:
                    # The full decode wipes out the crops' error, so check the frame before it.
                    score = psnr(span[-1], decoder.decode(span_latents[-1])[0])
                    stats.full_decodes += 1
            else:
                stats.crop_decodes += covered > 0
                stats.crop_area += covered
            # Whether the image holds crop output no check has seen yet.
            unverified = done and not closes_span and (unverified or covered > 0)
            if not first and decoder.staged and (closes_span or not done):
                canvas.learn_gain(stale, exact, moved)
            if score is not None:
                stats.checks += 1
                stats.check_psnrs.append(score)
                stats.min_check_psnr = min(stats.min_check_psnr, score)
                if score < options.min_psnr:
                    stats.failed_checks += 1
                    # The span already decoded may be off by as much: decode it again in full.
                    span = [decoder.decode(previous)[0] for previous in span_latents]
                    stats.full_decodes += len(span)
                    tightenings += 1
                    if tightenings > MAX_TIGHTENINGS:
                        crops = False
                        stats.fallback = f"crops missed {options.min_psnr:g} dB {stats.failed_checks} times (last {score:.1f} dB)"
                    else:
                        options = replace(options, threshold=options.threshold / 2, halo=options.halo + 1)
                        context += 2
                        stats.options = replace(options, context=context)
            span.append(canvas.image.clone())
            span_latents.append(latent)
            stats.frames += 1
            if closes_span:
                yield torch.stack(span)
                span, span_latents = [], []


def _learn_context(canvas: _Canvas, latent, features, options: IncrementalOptions):
    """The narrowest context with which a crop decode of this frame, started from the decode of
    the previous one, meets ``min_psnr`` against its full decode: ``(context, None)``; ``(-1,
    None)`` when nothing changed (nothing learned); ``(None, why)`` when no context does. Leaves
    the canvas on the full decode of ``latent``."""
    start_image, start_shown = canvas.image.clone(), canvas.shown.clone()
    exact = canvas.full(latent, features).clone()
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
    "sequential_stages",
]
