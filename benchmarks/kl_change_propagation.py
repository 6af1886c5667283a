"""Change propagation for a KL-VAE decoder (SD1.x/SDXL/SD3/FLUX ``AutoencoderKL``; ComfyUI's
``comfy.ldm.modules.diffusionmodules.model.Decoder``), DeltaCNN-style: the experiment behind the
README's KL-VAE rows. It does not meet the bound the nodes promise, so the nodes do not offer it
(they decode KL-VAEs in full); it lives with the benchmarks that measure it.

Decoding a painting one full decode per frame repeats almost all the work: consecutive latents
differ only where one brush stroke landed. :class:`ChangePropagation` keeps every stage's input
from the previous frame and, for a new latent, recomputes each stage only in boxes around the
positions whose input changed (with exactly the context its convolutions need), then passes on
only the positions whose output moved by more than ``threshold`` x that stage's activation scale
(Parger et al., "DeltaCNN", CVPR 2022: a position below the threshold keeps its last propagated
value, so small changes accumulate against it until they matter instead of being lost).

The stages at the latent resolution (conv_in, the mid block, the lowest up level) cost ~9% of a
full decode. With ``head="recompute"`` they run in full on every frame, with fresh norm
statistics and exact attention, and only their output is compared with the kept one; the
higher-resolution stages (~91% of the work) are propagated. ``head="propagate"`` propagates the
latent-resolution stages too.

In the propagated stages two approximations make the decoder local, both reset by
:meth:`ChangePropagation.full`:

- every GroupNorm uses the per-group mean/variance of the last full decode (frozen statistics:
  the norm becomes a per-channel affine map, so a ResnetBlock only reaches 2 px);
- positions whose change stays below the threshold are not propagated.

With ``head="propagate"`` the mid-block attention is propagated too. It keeps Q/K/V of every token
and each query's attention output with its log-sum-exp, so when some tokens change it updates every
query's output exactly (remove the changed keys' old softmax terms, add the new ones; O(tokens x
changed) work) and the threshold then decides which positions move on. ``attention="changed_queries"``
instead recomputes only queries whose input changed (unchanged queries keep their old output).

Host-free: it reads the decoder's structure by attribute names and calls the decoder's own
submodules for full decodes, so :meth:`ChangePropagation.full` is bit-equal to the decoder's forward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from latent_painter.painter.render import regions as render_regions


class Box(NamedTuple):
    """Rows y0:y1, columns x0:x1 (stop exclusive) of a map."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)

    def grown(self, by: int, height: int, width: int) -> "Box":
        return Box(max(0, self.y0 - by), min(height, self.y1 + by),
                   max(0, self.x0 - by), min(width, self.x1 + by))

    def within(self, outer: "Box") -> "Box":
        """This box in the coordinates of a crop starting at ``outer``'s corner."""
        return Box(self.y0 - outer.y0, self.y1 - outer.y0, self.x0 - outer.x0, self.x1 - outer.x0)

    def of(self, x: Tensor) -> Tensor:
        return x[..., self.y0:self.y1, self.x0:self.x1]


# --- boxes around changed positions ----------------------------------------------------------


def changed_boxes(mask: Tensor, gap: int) -> list[Box]:
    """The renderer's boxes around changed positions (painter/render/regions.py), as :class:`Box`."""
    return [Box(*box) for box in render_regions.changed_boxes(mask, gap)]


def dilate(mask: Tensor, by: int) -> Tensor:
    if by == 0:
        return mask
    return F.max_pool2d(mask[None, None].float(), 2 * by + 1, 1, by)[0, 0] > 0


def upsample_mask(mask: Tensor, factor: int) -> Tensor:
    return mask.repeat_interleave(factor, 0).repeat_interleave(factor, 1)


# --- convolution and normalisation on crops --------------------------------------------------


def conv3x3_on_crop(x: Tensor, conv: torch.nn.Conv2d, box: Box, height: int, width: int) -> tuple[Tensor, Box]:
    """``conv`` (3x3, padding 1) of the crop ``x`` that covers ``box`` of a ``height x width`` map.
    Zero padding applies only where the crop touches the map's border (as in the full conv);
    elsewhere the crop's own pixels are the context, so the result covers ``box`` shrunk by 1
    on its interior sides, and equals the full conv there."""
    top, bottom = int(box.y0 == 0), int(box.y1 == height)
    left, right = int(box.x0 == 0), int(box.x1 == width)
    padded = F.pad(x, (left, right, top, bottom))
    out = F.conv2d(padded, conv.weight, conv.bias)
    return out, Box(box.y0 + 1 - top, box.y1 - 1 + bottom, box.x0 + 1 - left, box.x1 - 1 + right)


class FrozenGroupNorm:
    """A GroupNorm whose per-group statistics are those of the last full decode: a per-channel
    affine map, so it needs no context and a crop normalises exactly as the frozen full frame.

    When its input is a kept tensor, :meth:`replace` follows the overwritten positions' sums, so
    :meth:`drift` tells how far the statistics the norm would compute now have moved from the
    frozen ones (the freeze's error source, estimated from the kept activations)."""

    def __init__(self, norm: torch.nn.GroupNorm):
        self.norm = norm
        self.scale: Tensor | None = None
        self.shift: Tensor | None = None

    def full(self, x: Tensor) -> Tensor:
        """The module's own output (bit-equal to the decoder), freezing the statistics of ``x``."""
        channels, groups = x.shape[1], self.norm.num_groups
        var, mean = torch.var_mean(x.reshape(x.shape[0], groups, -1), dim=-1, unbiased=False)
        rstd = torch.rsqrt(var + self.norm.eps).repeat_interleave(channels // groups, dim=1)
        weight = self.norm.weight if self.norm.weight is not None else torch.ones_like(rstd[0])
        bias = self.norm.bias if self.norm.bias is not None else torch.zeros_like(rstd[0])
        self.scale = (weight * rstd)[..., None, None]
        self.shift = (bias - mean.repeat_interleave(channels // groups, dim=1) * weight * rstd)[..., None, None]
        # Running per-group sums (float64: thousands of small updates) for the drift estimate.
        self.count = x[0, 0].numel() * (channels // groups)
        self.frozen_mean, self.frozen_var = mean[0].double(), var[0].double()
        self.sum = self.frozen_mean * self.count
        self.sum_squares = (self.frozen_var + self.frozen_mean ** 2) * self.count
        return self.norm(x)

    def frozen(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x, self.scale)

    def replace(self, old: Tensor, new: Tensor) -> None:
        """Positions of the norm's input overwritten: ``old``/``new`` are [C, positions]
        (zero where nothing was written)."""
        groups = self.norm.num_groups
        self.sum += (new - old).sum(dim=1, dtype=torch.float64).view(groups, -1).sum(dim=1)
        squares = (new * new - old * old).sum(dim=1, dtype=torch.float64)
        self.sum_squares += squares.view(groups, -1).sum(dim=1)

    def drift(self) -> float:
        """Largest change over groups of the standard deviation (relative) or of the mean (in
        frozen standard deviations) since the freeze."""
        mean = self.sum / self.count
        var = (self.sum_squares / self.count - mean ** 2).clamp_min(0)
        std_change = ((var + self.norm.eps) / (self.frozen_var + self.norm.eps)).sqrt() - 1
        mean_change = (mean - self.frozen_mean) / (self.frozen_var + self.norm.eps).sqrt()
        return float(torch.maximum(std_change.abs(), mean_change.abs()).max())

    def bytes(self) -> int:
        return 2 * self.scale.numel() * self.scale.element_size() if self.scale is not None else 0


# --- stages: pieces of the decoder between kept tensors --------------------------------------


class Stage:
    """A piece of the decoder from one kept tensor to the next. Local stages compute any output
    box from their kept input (``output_box``); ``reach`` is how far (in output pixels) a changed
    input position moves outputs, ``upscale`` the output/input resolution ratio."""

    name: str
    reach: int
    upscale: int = 1
    input_norm: FrozenGroupNorm | None = None  # the norm that reads this stage's input, if any

    def full(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def output_box(self, x: Tensor, box: Box) -> Tensor:
        raise NotImplementedError

    def affected(self, changed_in: Tensor) -> Tensor:
        mask = upsample_mask(changed_in, self.upscale) if self.upscale > 1 else changed_in
        return dilate(mask, self.reach)

    def state_bytes(self) -> int:
        return 0


class LatentInput(Stage):
    """post_quant_conv (1x1) then decoder.conv_in (3x3)."""

    reach = 1

    def __init__(self, post_quant_conv: torch.nn.Module | None, conv_in: torch.nn.Conv2d):
        self.name, self.post_quant_conv, self.conv_in = "conv_in", post_quant_conv, conv_in

    def full(self, z: Tensor) -> Tensor:
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.conv_in(z)

    def output_box(self, z: Tensor, box: Box) -> Tensor:
        height, width = z.shape[-2:]
        crop = box.grown(1, height, width)
        x = crop.of(z)
        if self.post_quant_conv is not None:
            x = F.conv2d(x, self.post_quant_conv.weight, self.post_quant_conv.bias)
        out, covered = conv3x3_on_crop(x, self.conv_in, crop, height, width)
        return box.within(covered).of(out)


class Resnet(Stage):
    """ResnetBlock: norm1, swish, conv1, norm2, swish, conv2, plus the (1x1) shortcut."""

    reach = 2

    def __init__(self, name: str, block: torch.nn.Module):
        if getattr(block, "use_conv_shortcut", False) and block.in_channels != block.out_channels:
            raise NotImplementedError("ResnetBlock with a 3x3 conv_shortcut")
        self.name, self.block = name, block
        self.norm1, self.norm2 = FrozenGroupNorm(block.norm1), FrozenGroupNorm(block.norm2)
        self.input_norm = self.norm1
        self.shortcut = getattr(block, "nin_shortcut", None) if block.in_channels != block.out_channels else None

    def full(self, x: Tensor) -> Tensor:
        # The block's own ops in its own order (bit-equal), also freezing both norms' statistics.
        h = self.block.conv1(F.silu(self.norm1.full(x)))
        h = self.block.conv2(F.silu(self.norm2.full(h)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h

    def output_box(self, x: Tensor, box: Box) -> Tensor:
        height, width = x.shape[-2:]
        crop = box.grown(2, height, width)
        x_crop = crop.of(x)
        h, covered = conv3x3_on_crop(F.silu(self.norm1.frozen(x_crop)), self.block.conv1, crop, height, width)
        h, covered = conv3x3_on_crop(F.silu(self.norm2.frozen(h)), self.block.conv2, covered, height, width)
        skip = box.within(crop).of(x_crop)
        if self.shortcut is not None:
            skip = F.conv2d(skip, self.shortcut.weight, self.shortcut.bias)
        return skip + box.within(covered).of(h)

    def state_bytes(self) -> int:
        return self.norm1.bytes() + self.norm2.bytes()


class Upsample(Stage):
    """Nearest x2 then a 3x3 conv at the output resolution."""

    reach = 1
    upscale = 2

    def __init__(self, name: str, upsample: torch.nn.Module):
        factor = upsample.scale_factor
        factor = factor if isinstance(factor, (int, float)) else factor[-1]
        if factor != 2 or not getattr(upsample, "with_conv", True):
            raise NotImplementedError("only a x2 upsample with a conv")
        self.name, self.conv = name, upsample.conv

    def full(self, x: Tensor) -> Tensor:
        # Same op as the decoder's Upsample for 4D input: interpolate nearest with scale (2.0, 2.0).
        return self.conv(F.interpolate(x, scale_factor=(2.0, 2.0), mode="nearest"))

    def output_box(self, x: Tensor, box: Box) -> Tensor:
        height, width = 2 * x.shape[-2], 2 * x.shape[-1]
        needed = box.grown(1, height, width)  # upsampled input the conv reads
        low = Box(needed.y0 // 2, (needed.y1 + 1) // 2, needed.x0 // 2, (needed.x1 + 1) // 2)
        up = F.interpolate(low.of(x), scale_factor=(2.0, 2.0), mode="nearest")
        up = needed.within(Box(2 * low.y0, 2 * low.y1, 2 * low.x0, 2 * low.x1)).of(up)
        out, covered = conv3x3_on_crop(up, self.conv, needed, height, width)
        return box.within(covered).of(out)


class Output(Stage):
    """norm_out, swish, conv_out (and tanh when the decoder has tanh_out)."""

    reach = 1

    def __init__(self, decoder: torch.nn.Module):
        self.name, self.norm, self.conv = "conv_out", FrozenGroupNorm(decoder.norm_out), decoder.conv_out
        self.input_norm = self.norm
        self.tanh = bool(getattr(decoder, "tanh_out", False))

    def full(self, x: Tensor) -> Tensor:
        out = self.conv(F.silu(self.norm.full(x)))
        return torch.tanh(out) if self.tanh else out

    def output_box(self, x: Tensor, box: Box) -> Tensor:
        height, width = x.shape[-2:]
        crop = box.grown(1, height, width)
        out, covered = conv3x3_on_crop(F.silu(self.norm.frozen(crop.of(x))), self.conv, crop, height, width)
        out = box.within(covered).of(out)
        return torch.tanh(out) if self.tanh else out

    def state_bytes(self) -> int:
        return self.norm.bytes()


class Attention(Stage):
    """The mid-block AttnBlock (one head over all h*w tokens), kept per token: Q, K, V, each
    query's attention output ``mixed`` (before proj_out) and its log-sum-exp ``lse``, so a change
    of some tokens updates every query exactly in O(tokens x changed) instead of O(tokens^2)."""

    reach = 0
    QUERY_CHUNK = 1024  # queries per score block (bounds the [chunk, tokens] score memory)

    def __init__(self, name: str, attn: torch.nn.Module, exact: bool):
        self.name, self.attn, self.exact = name, attn, exact
        self.keeps_state = True  # False when it is always recomputed in full (no propagation)
        self.norm = FrozenGroupNorm(attn.norm)
        self.input_norm = self.norm
        self.q = self.k = self.v = self.mixed = self.lse = None

    @staticmethod
    def _tokens(x: Tensor) -> Tensor:  # [1,C,h,w] -> [h*w, C]
        return x.flatten(2)[0].T

    def _linear(self, conv: torch.nn.Conv2d, tokens: Tensor) -> Tensor:
        return torch.addmm(conv.bias, tokens, conv.weight[:, :, 0, 0].T)

    def full(self, x: Tensor) -> Tensor:
        h = self.norm.full(x)
        q, k, v = self.attn.q(h), self.attn.k(h), self.attn.v(h)
        mixed = self.attn.optimized_attention(q, k, v)  # the module's own kernel: bit-equal output
        out = x + self.attn.proj_out(mixed)
        if not self.keeps_state:
            return out
        self.q, self.k, self.v = self._tokens(q).contiguous(), self._tokens(k).contiguous(), self._tokens(v).contiguous()
        self.mixed = self._tokens(mixed).double()
        self.scale = q.shape[1] ** -0.5
        self.lse = torch.cat([torch.logsumexp((self.q[i:i + self.QUERY_CHUNK] @ self.k.T) * self.scale, dim=1)
                              for i in range(0, self.q.shape[0], self.QUERY_CHUNK)]).double()
        return out

    def propagate(self, x: Tensor, changed_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Update the kept attention state for the changed tokens of ``x`` (the kept input after
        this frame's writes). Returns the new block output for the tokens in ``rows`` (all tokens
        when exact, else the changed ones) and ``rows`` (None: all)."""
        changed = changed_in.flatten().nonzero().flatten()
        tokens = self._tokens(x)
        h = torch.addcmul(self.norm.shift.flatten(), tokens[changed], self.norm.scale.flatten())
        q_new, k_new, v_new = (self._linear(conv, h) for conv in (self.attn.q, self.attn.k, self.attn.v))
        if self.exact:
            self._replace_keys(changed, k_new, v_new)
        self.k[changed], self.v[changed], self.q[changed] = k_new, v_new, q_new
        self._recompute_queries(changed)
        rows = None if self.exact else changed
        mixed = self.mixed if rows is None else self.mixed[rows]
        base = tokens if rows is None else tokens[rows]
        return base + self._linear(self.attn.proj_out, mixed.float()), rows

    def _replace_keys(self, changed: Tensor, k_new: Tensor, v_new: Tensor) -> None:
        """Every query's softmax average with the changed keys' old terms swapped for new ones.
        ``mixed`` is sum_j p_j v_j with p_j = exp(s_j - lse); removing/adding terms changes the
        normaliser by ``ratio`` = 1 - sum p_old + sum p_new (float64: no drift over many updates)."""
        k_old, v_old = self.k[changed], self.v[changed]
        for start in range(0, self.q.shape[0], self.QUERY_CHUNK):
            rows = slice(start, start + self.QUERY_CHUNK)
            lse = self.lse[rows, None]
            p_old = torch.exp(((self.q[rows] @ k_old.T) * self.scale).double() - lse)
            p_new = torch.exp(((self.q[rows] @ k_new.T) * self.scale).double() - lse)
            ratio = 1.0 - p_old.sum(1, keepdim=True) + p_new.sum(1, keepdim=True)
            delta = (p_new.float() @ v_new - p_old.float() @ v_old).double()
            self.mixed[rows] = (self.mixed[rows] + delta) / ratio
            self.lse[rows] += torch.log(ratio[:, 0])

    def _recompute_queries(self, changed: Tensor) -> None:
        scores = (self.q[changed] @ self.k.T) * self.scale
        self.lse[changed] = torch.logsumexp(scores, dim=1).double()
        self.mixed[changed] = (torch.softmax(scores, dim=1) @ self.v).double()

    def state_bytes(self) -> int:
        kept = (self.q, self.k, self.v, self.mixed, self.lse)
        return self.norm.bytes() + sum(t.numel() * t.element_size() for t in kept if t is not None)


def decoder_stages(post_quant_conv, decoder, *, exact_attention: bool) -> list[Stage]:
    """The decoder's forward as stages, read from its attribute names."""
    stages: list[Stage] = [LatentInput(post_quant_conv, decoder.conv_in),
                           Resnet("mid.block_1", decoder.mid.block_1),
                           Attention("mid.attn_1", decoder.mid.attn_1, exact_attention),
                           Resnet("mid.block_2", decoder.mid.block_2)]
    for level in reversed(range(len(decoder.up))):
        up = decoder.up[level]
        if len(up.attn) > 0:
            raise NotImplementedError("attention inside the up levels")
        stages += [Resnet(f"up[{level}].block[{i}]", block) for i, block in enumerate(up.block)]
        if hasattr(up, "upsample"):
            stages.append(Upsample(f"up[{level}].upsample", up.upsample))
    stages.append(Output(decoder))
    return stages


# --- the propagation -------------------------------------------------------------------------


@dataclass
class StageCounters:
    """Per stage, summed over updates: shares of its output positions recomputed (box area, the
    work) and passed on as changed (above the threshold), and seconds spent."""

    recomputed: float = 0.0
    passed: float = 0.0
    seconds: float = 0.0


@dataclass
class Counters:
    attempts: int = 0  # update() calls that propagated (to the end or until a refresh)
    fallbacks: int = 0  # frames decoded in full because the latent changed almost everywhere
    # "drift|dense from <stage>": frames whose decode was finished in full from that stage.
    finished_in_full: dict[str, int] = field(default_factory=dict)
    stages: dict[str, StageCounters] = field(default_factory=dict)
    drift: list[float] = field(default_factory=list)  # per propagated frame: largest norm drift


class ChangePropagation:
    """Decode a sequence of latents, each after the first by propagating its change.

    ``threshold``: a position passes its change on when it moved by more than ``threshold`` x the
    stage's output standard deviation (at the last full decode) in any channel (DeltaCNN's max over
    channels); 0 passes every change on (then only the frozen norm statistics differ from a full
    decode). ``attention``: "exact" (every query updated, then thresholded) or "changed_queries".
    ``full_above``: a change covering more than this share of the latent is decoded in full, and
    of a stage's input, finished in full from that stage (cropping would cost more than the stage).
    ``refresh_above``: as soon as a tracked norm's statistics drift by more than this (see
    :meth:`FrozenGroupNorm.drift`) the decode is finished in full from that norm's stage on,
    re-freezing the norms there (upstream norms stay frozen); None never refreshes.
    ``head``: "recompute" runs the latent-resolution stages in full on every frame (exact, fresh
    statistics) and propagates from their output on; "propagate" propagates them too."""

    def __init__(self, post_quant_conv: torch.nn.Module | None, decoder: torch.nn.Module, *,
                 threshold: float, attention: str = "exact", full_above: float = 0.5,
                 refresh_above: float | None = None, head: str = "recompute"):
        if attention not in ("exact", "changed_queries"):
            raise ValueError(f"attention must be 'exact' or 'changed_queries', not {attention!r}")
        if head not in ("recompute", "propagate"):
            raise ValueError(f"head must be 'recompute' or 'propagate', not {head!r}")
        self.threshold, self.full_above, self.refresh_above = threshold, full_above, refresh_above
        self.stages = decoder_stages(post_quant_conv, decoder, exact_attention=attention == "exact")
        # Stages before the first upsample work at the latent resolution: the cheap head.
        first_upsample = next(i for i, stage in enumerate(self.stages) if stage.upscale > 1)
        self.head_stages = first_upsample if head == "recompute" else 0
        for stage in self.stages[:self.head_stages]:
            if isinstance(stage, Attention):
                stage.keeps_state = False
        # kept[i]: input of stages[i] (None inside a recomputed head); kept[-1]: the decoder output
        self.kept: list[Tensor | None] = []
        self.scales: list[float] = []  # std of each stage's output at the last full decode
        self.counters = Counters()

    @torch.inference_mode()
    def full(self, latent: Tensor) -> Tensor:
        """Decode ``latent [1,C,h,w]`` in full (the decoder's own ops: bit-equal to its forward)
        and keep every stage's input and the norms' statistics. Returns the output [1,3,H,W]."""
        self._check_latent(latent)
        x = latent.clone()
        self.kept, self.scales = [x], []
        for stage in self.stages:
            x = stage.full(x)
            self.kept.append(x)
            self.scales.append(float(x.std()))
        for inside_head in range(1, self.head_stages):
            self.kept[inside_head] = None  # recomputed from the latent on every frame: not kept
        return x.clone()

    @torch.inference_mode()
    def update(self, latent: Tensor) -> Tensor:
        """Decode ``latent`` by propagating its change from the latent of the last call."""
        if not self.kept:
            return self.full(latent)
        self._check_latent(latent)
        changed = (latent != self.kept[0]).any(dim=1)[0]
        if changed.float().mean().item() > self.full_above:
            self.counters.fallbacks += 1
            return self.full(latent)
        self.kept[0].copy_(latent)
        self.counters.attempts += 1
        if self.head_stages:
            changed = self._recompute_head(latent)
        finish_from, reason = self._propagate(changed, first=self.head_stages)
        if finish_from is not None:
            self._finish_in_full(finish_from, reason)
        self.counters.drift.append(max((s.input_norm.drift() for s in self.stages if s.input_norm), default=0.0))
        return self.kept[-1].clone()

    def _recompute_head(self, latent: Tensor) -> Tensor:
        """Run the head stages in full (fresh statistics, exact attention); write their output
        where it moved by more than the threshold. Returns those positions."""
        started = time.perf_counter()
        x = latent
        for stage in self.stages[:self.head_stages]:
            x = stage.full(x)
        last = self.head_stages - 1
        everywhere = torch.ones(x.shape[-2:], dtype=torch.bool)
        changed = self._write_significant(self.kept[last + 1], x, everywhere,
                                          self.threshold * self.scales[last], self._reader_norm(last))
        self._count("head (recomputed)", started, 1.0, changed)
        return changed

    def _propagate(self, changed: Tensor, first: int) -> tuple[int | None, str]:
        """Propagate ``changed`` (positions of stage ``first``'s input) stage by stage. Stops early,
        returning the stage to finish the decode from in full and why: when the change covers most
        of a stage's input (cropping would cost more than the stage), or when a norm's statistics
        drifted past ``refresh_above`` (the stages from that norm on are re-frozen)."""
        for index in range(first, len(self.stages)):
            if not changed.any():
                return None, ""
            if changed.float().mean().item() > self.full_above:
                return index, "dense"
            stage = self.stages[index]
            limit = 0.0 if index == len(self.stages) - 1 else self.threshold * self.scales[index]
            started = time.perf_counter()
            if isinstance(stage, Attention):
                changed, recomputed = self._propagate_attention(index, stage, changed, limit)
            else:
                changed, recomputed = self._propagate_local(index, stage, changed, limit)
            self._count(stage.name, started, recomputed, changed)
            reader = self._reader_norm(index)
            if self.refresh_above is not None and reader is not None and reader.drift() > self.refresh_above:
                return index + 1, "drift"
        return None, ""

    def _finish_in_full(self, start: int, reason: str) -> None:
        """Run ``stages[start:]`` in full on the kept input of ``start``: exact given that input,
        and their norms re-frozen at the current activations (a refresh of those stages only)."""
        started = time.perf_counter()
        x = self.kept[start]
        for index in range(start, len(self.stages)):
            x = self.stages[index].full(x)
            self.kept[index + 1] = x
            self.scales[index] = float(x.std())
        name = self.stages[start].name
        key = f"{reason} from {name}"
        self.counters.finished_in_full[key] = self.counters.finished_in_full.get(key, 0) + 1
        self._count(f"(in full from {name})", started, 1.0, torch.ones(1, dtype=torch.bool))

    def _count(self, name: str, started: float, recomputed: float, changed: Tensor) -> None:
        counter = self.counters.stages.setdefault(name, StageCounters())
        counter.seconds += time.perf_counter() - started
        counter.recomputed += recomputed
        counter.passed += changed.float().mean().item()

    def _reader_norm(self, index: int) -> FrozenGroupNorm | None:
        """The norm reading stage ``index``'s output (the next stage's input norm)."""
        return self.stages[index + 1].input_norm if index + 1 < len(self.stages) else None

    def _propagate_local(self, index: int, stage: Stage, changed_in: Tensor, limit: float) -> tuple[Tensor, float]:
        source, target = self.kept[index], self.kept[index + 1]
        affected = stage.affected(changed_in)
        changed_out = torch.zeros_like(affected)
        boxes = changed_boxes(affected, gap=2 * stage.reach + 2)
        for box in boxes:
            new = stage.output_box(source, box)
            moved = self._write_significant(box.of(target), new, box.of(affected), limit, self._reader_norm(index))
            box.of(changed_out).copy_(moved)
        return changed_out, sum(box.area for box in boxes) / affected.numel()

    def _propagate_attention(self, index: int, stage: Attention, changed_in: Tensor, limit: float) -> tuple[Tensor, float]:
        source, target = self.kept[index], self.kept[index + 1]
        new_rows, rows = stage.propagate(source, changed_in)
        height, width = target.shape[-2:]
        flat_target = target.flatten(2)[0].T  # a view: [tokens, C]
        old_rows = flat_target if rows is None else flat_target[rows]
        moved = (new_rows - old_rows).abs().amax(dim=1) > limit
        picked = moved.nonzero().flatten() if rows is None else rows[moved]
        reader = self._reader_norm(index)
        if reader is not None:
            reader.replace(old_rows[moved].T, new_rows[moved].T)
        flat_target[picked] = new_rows[moved]
        changed_out = torch.zeros(height * width, dtype=torch.bool)
        changed_out[picked] = True
        recomputed = 1.0 if rows is None else rows.numel() / (height * width)
        return changed_out.view(height, width), recomputed

    @staticmethod
    def _write_significant(old: Tensor, new: Tensor, affected: Tensor, limit: float,
                           reader: FrozenGroupNorm | None) -> Tensor:
        """Write ``new`` over ``old`` (a view of a kept tensor) where the change exceeds ``limit``
        in some channel; elsewhere the last propagated value stays (DeltaCNN's accumulation: the
        next comparison is against it). Returns the written positions [h,w]."""
        moved = ((new - old).abs().amax(dim=1)[0] > limit) & affected
        written = torch.where(moved, new, old)
        if reader is not None:
            reader.replace(old[0].flatten(1), written[0].flatten(1))
        old.copy_(written)
        return moved

    def _check_latent(self, latent: Tensor) -> None:
        if latent.ndim != 4 or latent.shape[0] != 1:
            raise ValueError(f"expected one latent [1,C,h,w], got {tuple(latent.shape)}")

    def kept_bytes(self) -> int:
        tensors = sum(t.numel() * t.element_size() for t in self.kept if t is not None)
        return tensors + sum(stage.state_bytes() for stage in self.stages)

    def reset_counters(self) -> None:
        self.counters = Counters()
