"""The stroke painter (the paper's painter, as ARCHITECTURE.md "The idea" reads it).

Per schedule (one denoising step's predicted original as the target) the painter spends a
budget of strokes. Each stroke picks the painting channel with the most motivated gain,
then the centre in that channel where a brush of the current radius would transfer the
most gain, less a cost for moving the hand far from the previous stroke; the plan passes
through the footprint in that channel only. What a schedule leaves unpainted stays in the
residual and rolls into the next schedule; unspent budget carries over too.

Channel groups. On latents with many channels one channel is a small slice of what a latent
pixel holds: a stroke leaves half-painted pixels, which a decoder shows as texture (its
8-px grid). So a stroke paints a group of ``channels_per_stroke`` channels. Automatic (0): one
channel on SD's 4-channel latents (the author's one per stroke), every channel on any other: wider
latents, and pixel space's 3 channels, which are red, green and blue (one at a time they paint
disks of saturated primaries; whole pixels paint colour blobs that sharpen, README "Model families"). Measured on a re-encoded trajectory at 256 px with the real taef2 decoder
(benchmarks/bench_look.py; early-frame grid energy over the final frame's, target <= 1.5):
32 channels, groups of 8 / 16 / 32: 3.4 / 2.3 / 1.0; 16 channels, groups of 1 / 4 / 8 / 16:
7.5 / 4.1 / 3.0 / 1.1; 4 channels, one per stroke: 0.9. Any partial group leaves latent pixels
no encoder would make, and the decoder shows them as its grid; pacing also evened out (32
channels: 0.020 -> 0.010). The painting
channel still leads: it is chosen and the stroke placed exactly as with one channel; the
group adds the channels that lack most of the plan under that footprint (each channel's
gain summed over the footprint), so the stroke completes the pixels it touches as far as
the group allows. The stroke map colours the group by its lead channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .gain import (
    BRUSHES,
    brush_kernel,
    brush_spans,
    eligible,
    footprint,
    information_gain,
    motivation_level,
    pooled_gain,
)
from .decisions import best, ranked
from .limits import checked
from .stages import Workbench, register_stage
from .timeline import Event, make_event

# The author's stroke24 ramp, measured on the stroke-map video (ARCHITECTURE.md), in
# latent pixels of a 64x64 latent: small strokes first, large ones last, every schedule.
STROKE24_RADII = (1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 8, 9, 10, 11, 12)
# On latents of this many channels (SD1.5/SDXL's) the automatic group is the author's single channel.
AUTOMATIC_SINGLE_CHANNEL = 4
# Stroke centres are chosen per latent pixel on latents up to this side (every 8x and 16x VAE's
# latent up to 2048 px), and on a grid of ceil(side / PLACEMENT_SIDE) latent pixels beyond it: a
# pixel-space latent of 1024 px is 1024 pixels a side, where scoring every pixel for strokes of
# 16-192 px costs 64x an 8x latent's work for no visible difference (benchmarks/bench_families.py).
PLACEMENT_SIDE = 256
# Thinner and thicker runs of the same ramp, for shorter or longer paintings.
STROKE_PRESETS = {
    "stroke24": STROKE24_RADII,
    "stroke12": STROKE24_RADII[1::2],
    "stroke8": STROKE24_RADII[2::3],
    "stroke48": tuple(r for r in STROKE24_RADII for _ in range(2)),
}


@register_stage
@dataclass(frozen=True)
class Strokes:
    """Settings of the stroke painter (JSON-serialisable).

    radii:             stroke radius of each stroke in a schedule, in latent pixels of a
                       64x64 latent (len = strokes per schedule).
    brush:             disk, square or soft (cosine fall-off).
    channels:          channels that may be painted; empty = all.
    move_cost:         penalty for moving the brush far from the previous stroke (0 = none);
                       makes strokes walk in a path like a hand.
    switch_cost:       penalty for changing the painting channel, as a share of the best
                       channel's gain (large values keep one channel per schedule).
    motivation:        a place may take a stroke only when its gain accumulated over the
                       schedules exceeds this multiple of the mean (0 = always).
    size_scale:        multiplies all radii; 0 = scale with the latent (side / 64).
    early_size:        radius multiplier at the first schedule, easing to 1 at the last
                       (>1 paints rough first and fine last).
    strokes_per_frame: how many strokes one frame shows when frames follow strokes.
    schedules:         how many schedules this stage paints in a chain; 0 = its share of the rest.
    channels_per_stroke: channels one stroke paints (the painting channel and those that lack
                       most under its footprint); 0 = automatic: 1 on latents of 4
                       channels, all of them on any other.
    """

    radii: tuple[float, ...] = STROKE24_RADII
    brush: str = "disk"
    channels: tuple[int, ...] = ()
    move_cost: float = 0.1
    switch_cost: float = 0.0
    motivation: float = 0.0
    size_scale: float = 0.0
    early_size: float = 1.0
    strokes_per_frame: int = 1
    schedules: int = 0
    channels_per_stroke: int = 0

    def __post_init__(self):
        checked("strokes per schedule", len(self.radii))
        for radius in self.radii:
            checked("radius", radius)
        if self.brush not in BRUSHES:
            raise ValueError(f"brush {self.brush!r} is unknown; use one of {', '.join(BRUSHES)}")
        for name in ("move_cost", "switch_cost", "motivation", "size_scale", "early_size", "strokes_per_frame",
                     "schedules", "channels_per_stroke"):
            checked(name, getattr(self, name))

    def group_size(self, channels: int) -> int:
        """Channels one stroke paints on a ``channels``-channel latent (never more than it has)."""
        if self.channels_per_stroke:
            return min(channels, self.channels_per_stroke)
        return 1 if channels == AUTOMATIC_SINGLE_CHANNEL else channels

    @property
    def frames_per_schedule(self) -> float:
        return len(self.radii) / self.strokes_per_frame

    def paint(self, bench, targets, target_index, allowed, share) -> list[Event]:
        return paint_schedule(self, bench, targets, target_index, allowed, share)


def placement_step(height: int, width: int) -> int:
    """Latent pixels per side of the grid stroke centres are chosen on: 1 up to ``PLACEMENT_SIDE``."""
    return max(1, math.ceil(max(height, width) / PLACEMENT_SIDE))


def radius_for(settings: Strokes, stroke: int, budget: int, schedule_share: float, latent_side: float) -> float:
    """Radius of stroke ``stroke`` of ``budget`` (the ramp is stretched over a larger budget)."""
    ramp = settings.radii
    base = ramp[min(len(ramp) - 1, stroke * len(ramp) // budget)]
    scale = settings.size_scale or latent_side / 64
    size = settings.early_size + (1 - settings.early_size) * schedule_share
    return base * scale * size


def stroke_group(window_gain: torch.Tensor, mask: torch.Tensor, lead: int, size: int) -> torch.Tensor:
    """The channels a stroke paints: ``lead`` first, then up to ``size - 1`` others with the most
    gain under the footprint (``window_gain`` [C,h,w] weighted by ``mask``); channels with no
    motivated, allowed gain there (zero) never join. Ties go to the lower channel index."""
    if size == 1:
        return torch.tensor([lead], device=window_gain.device)
    under = (window_gain * mask).sum((1, 2))
    under[lead] = math.inf
    order = ranked(under, size, "stroke group")
    return order[under[order] > 0]


def paint_schedule(
    settings: Strokes,
    bench: Workbench,
    targets: torch.Tensor,
    target_index: int,
    allowed: torch.Tensor,
    schedule_share: float,
) -> list[Event]:
    """Spend one schedule's stroke budget toward targets[target_index]; updates ``bench`` in place."""
    canvas, target = bench.canvas, targets[target_index]
    _, height, width = canvas.shape
    diagonal = math.hypot(height, width)
    budget = len(settings.radii) + bench.carried_strokes
    weight = 1.0 / settings.strokes_per_frame
    step = placement_step(height, width)
    # the latent pixel each score stands for (a block's centre on a coarse placement grid)
    rows = (torch.arange(-(-height // step), device=canvas.device, dtype=torch.float32) * step + step // 2)[:, None]
    cols = (torch.arange(-(-width // step), device=canvas.device, dtype=torch.float32) * step + step // 2)[None, :]
    # The motivation level is set once per schedule; after that only a stroke's window
    # changes, so gain and its channel sums are kept up to date there alone.
    level = motivation_level(bench.motivation, settings.motivation, allowed)
    gain = information_gain(target, canvas) * eligible(bench.motivation, level, allowed)
    channel_gain = gain.sum((1, 2))
    group = canvas.shape[0] if bench.whole_pixels else settings.group_size(canvas.shape[0])
    events: list[Event] = []
    for stroke in range(budget):
        choice = channel_gain
        if bench.channel is not None and settings.switch_cost > 0:
            penalty = torch.full_like(channel_gain, settings.switch_cost) * channel_gain.max()
            penalty[bench.channel] = 0
            choice = channel_gain - penalty
        channel = best(choice, "painting channel")
        if channel_gain[channel] <= 0:
            break  # nothing motivated left to paint: the budget carries over
        radius = radius_for(settings, stroke, budget, schedule_share, math.sqrt(height * width))
        kernel = brush_kernel(radius, settings.brush, canvas.device)
        if step == 1:
            score = pooled_gain(gain[channel], kernel, brush_spans(radius, settings.brush))
        else:  # the gain summed over step x step blocks, scored for the stroke at that scale
            coarse = F.pad(gain[channel], (0, (-width) % step, 0, (-height) % step))
            coarse = coarse.reshape(coarse.shape[0] // step, step, coarse.shape[1] // step, step).sum((1, 3))
            score = pooled_gain(coarse, brush_kernel(radius / step, settings.brush, canvas.device),
                                brush_spans(radius / step, settings.brush))
        if bench.position is not None and settings.move_cost > 0:
            distance = ((rows - bench.position[0]) ** 2 + (cols - bench.position[1]) ** 2).sqrt()
            score = score - settings.move_cost * score.max() * distance / diagonal
        row, col = divmod(best(score, "stroke centre"), score.shape[1])
        centre = (min(height - 1, row * step + step // 2), min(width - 1, col * step + step // 2))
        top, left, mask = footprint(kernel, centre, (height, width))
        rows_window, cols_window = slice(top, top + mask.shape[0]), slice(left, left + mask.shape[1])
        channels = stroke_group(gain[:, rows_window, cols_window], mask, channel, group)
        events.append(make_event(target_index=target_index, channels=channels, top=top, left=left, mask=mask,
                                  canvas=canvas, targets=targets, rgb=bench.rgb, weight=weight,
                                  lead=channel if group > 1 else None))
        window = (channels, rows_window, cols_window)
        bench.motivation[window] *= 1 - mask
        gain[window] = information_gain(target[window], canvas[window]) * eligible(
            bench.motivation[window], level, allowed[channels]
        )
        # Summed afresh, not updated by the window's difference: a running sum keeps float residue
        # (~1e-7, its sign set by the CPU's kernels) once a channel is painted out, and the choice
        # of channel and the end of the run then flipped between machines. Gain is >= 0, so a
        # painted-out channel sums to exactly 0 on every CPU.
        channel_gain[channels] = gain[channels].sum((1, 2))
        bench.position, bench.channel = centre, channel
    bench.carried_strokes = min(len(settings.radii), budget - len(events))
    return events
