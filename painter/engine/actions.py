"""Reveal actions: non-stroke ways to move the canvas toward a schedule's target
(the paper's "Beyond Strokes"; their shapes and frame counts measured on the author's videos,
ARCHITECTURE.md). Each action makes ``frames`` events
per schedule and can be held to the same restrictions as strokes (allowed channels,
accumulated motivation).

fade      the whole canvas cross-fades to the target in equal steps (author's ``fade8``)
glow      a disk grows from the place of highest gain until it covers the image (``radgrow``)
flip      small square blocks flip to the target in diagonal zig-zag chains (``zigzag16``)
dissolve  random cells flip to the target (``dissolve16``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .decisions import best
from .gain import information_gain, motivated
from .limits import checked
from .stages import Workbench, register_stage
from .timeline import Event, make_event

# One placed mask of a reveal step: (top, left, [h,w] weights) on the canvas.
Placed = tuple[int, int, torch.Tensor]


@dataclass(frozen=True)
class Reveal:
    """A reveal action kind.

    function:       ``(action, bench, target, allowed, count, schedule) -> [(top, left, mask), ...]``,
                    the ``count`` steps of one schedule toward the ``target`` tensor (one event each).
    default_frames: steps per schedule when the Action asks for 0.
    description:    a few words for the node's dropdown help.
    """

    name: str
    default_frames: int
    function: Callable[..., list[Placed]]
    description: str


REVEALS: dict[str, Reveal] = {}


def register_reveal(name: str, function, default_frames: int, description: str) -> Reveal:
    """Make ``function`` the reveal action ``name`` (Painter Action and the demo offer it)."""
    REVEALS[name] = Reveal(name, default_frames, function, description)
    return REVEALS[name]


@register_stage
@dataclass(frozen=True)
class Action:
    """Settings of a reveal action (JSON-serialisable).

    kind:       a registered reveal (fade, glow, flip, dissolve, ...; see REVEALS).
    frames:     events (frames) per schedule; 0 = the author's count for the kind.
    channels:   channels the action may change; empty = all.
    motivation: change only places whose accumulated gain exceeds this multiple of the mean.
    block:      flip: block side in latent pixels of a 64x64 latent; dissolve: cell side.
    fraction:   dissolve: share of the cells revealed per schedule (the rest rolls over).
    schedules:  how many schedules this stage paints in a chain; 0 = its share of the rest.
    """

    kind: str = "fade"
    frames: int = 0
    channels: tuple[int, ...] = ()
    motivation: float = 0.0
    block: float = 2.0
    fraction: float = 1.0
    schedules: int = 0

    def __post_init__(self):
        if self.kind not in REVEALS:
            raise ValueError(f"kind {self.kind!r} is unknown; use one of {', '.join(REVEALS)}")
        checked("action frames", self.frames)
        for name in ("motivation", "block", "fraction", "schedules"):
            checked(name, getattr(self, name))

    @property
    def frames_per_schedule(self) -> int:
        return self.frames or REVEALS[self.kind].default_frames

    def paint(self, bench, targets, target_index, allowed, share) -> list[Event]:
        return run_action(self, bench, targets, target_index, allowed, schedule=target_index)


def run_action(
    action: Action,
    bench: Workbench,
    targets: torch.Tensor,
    target_index: int,
    allowed: torch.Tensor,
    schedule: int,
) -> list[Event]:
    """One schedule of ``action`` toward targets[target_index]; updates ``bench`` in place."""
    canvas = bench.canvas
    channels = allowed.nonzero().flatten()
    # [k,H,W] weights 0/1 of where the action may act at all
    allowed_here = motivated(bench.motivation, action.motivation, allowed)[channels].float()
    count = action.frames_per_schedule
    masks = REVEALS[action.kind].function(action, bench, targets[target_index], allowed, count, schedule)
    events = []
    _, height, width = canvas.shape
    for top, left, mask in masks:
        if action.motivation > 0:
            mask = mask * allowed_here[:, top : top + mask.shape[-2], left : left + mask.shape[-1]]
        events.append(make_event(target_index=target_index, channels=channels, top=top, left=left, mask=mask,
                                  canvas=canvas, targets=targets, rgb=bench.rgb))
    if events:
        spent = torch.zeros(height, width, device=canvas.device)
        for event in events:
            rows, cols = event.window
            spent[rows, cols] = torch.maximum(spent[rows, cols], event.footprint)
        bench.motivation[channels] *= 1 - spent * allowed_here
    return events


def fade(action, bench, target, allowed, count, schedule):
    # step j of J moves 1/(J-j+1) of the remaining way, so every step changes the canvas
    # by the same amount and the last one lands exactly on the target
    _, height, width = bench.canvas.shape
    ones = torch.ones(height, width, device=bench.canvas.device)
    return [(0, 0, ones / (count - step)) for step in range(count)]


def glow(action, bench, target, allowed, count, schedule):
    canvas = bench.canvas
    _, height, width = canvas.shape
    gain = information_gain(target, canvas)[allowed].sum(0)
    blurred = F.avg_pool2d(gain[None, None], 5, stride=1, padding=2, count_include_pad=False)[0, 0]
    cy, cx = divmod(best(blurred, "glow centre"), width)
    rows = torch.arange(height, device=canvas.device, dtype=torch.float32)[:, None]
    cols = torch.arange(width, device=canvas.device, dtype=torch.float32)[None, :]
    distance = ((rows - cy) ** 2 + (cols - cx) ** 2).sqrt()
    reach = float(distance.max())
    # each ring is a hard disk; the last covers the whole canvas
    return [(0, 0, (distance <= reach * (step + 1) / count + 1e-6).float()) for step in range(count)]


def flip(action, bench, target, allowed, count, schedule):
    canvas = bench.canvas
    _, height, width = canvas.shape
    side = max(1, round(action.block * math.sqrt(height * width) / 64))
    gain = information_gain(target, canvas)[allowed].sum(0)
    block_gain = F.avg_pool2d(gain[None, None], side, stride=side, ceil_mode=True)[0, 0]
    rows_b, cols_b = block_gain.shape
    flipped = torch.zeros_like(block_gain, dtype=torch.bool)
    scores = block_gain.cpu()
    position, step_y = None, 1
    masks = []
    for _ in range(count):
        candidate = None
        if position is not None:
            by, bx = position
            # zig-zag: alternate the vertical direction while moving along the row
            for dy, dx in ((step_y, 1), (step_y, -1), (-step_y, 1), (-step_y, -1)):
                ny, nx = by + dy, bx + dx
                if 0 <= ny < rows_b and 0 <= nx < cols_b and not flipped[ny, nx] and scores[ny, nx] > 0:
                    candidate = (ny, nx)
                    step_y = -dy
                    break
        if candidate is None:
            open_scores = scores.masked_fill(flipped.cpu(), -1.0)
            if float(open_scores.max()) <= 0:
                break
            candidate = divmod(best(open_scores, "flip block"), cols_b)
        flipped[candidate] = True
        position = candidate
        top, left = candidate[0] * side, candidate[1] * side
        block = torch.ones(min(side, height - top), min(side, width - left), device=canvas.device)
        masks.append((top, left, block))
    return masks


def dissolve(action, bench, target, allowed, count, schedule):
    canvas = bench.canvas
    _, height, width = canvas.shape
    side = max(1, round(action.block * math.sqrt(height * width) / 64 / 2))
    rows_c, cols_c = math.ceil(height / side), math.ceil(width / side)
    cells = rows_c * cols_c
    generator = torch.Generator().manual_seed((bench.seed * 1_000_003 + schedule) % 2**63)
    order = torch.randperm(cells, generator=generator)[: max(1, round(cells * action.fraction))]
    bounds = torch.linspace(0, len(order), count + 1).round().long().tolist()
    masks = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        grid = torch.zeros(cells)
        grid[order[start:stop]] = 1
        grid = grid.view(1, 1, rows_c, cols_c).to(canvas.device)
        full = F.interpolate(grid, scale_factor=side, mode="nearest")[0, 0, :height, :width]
        masks.append((0, 0, full))
    return masks


# Frames per schedule measured in the author's demos (ARCHITECTURE.md).
register_reveal("fade", fade, 8, "the whole canvas cross-fades to the target")
register_reveal("glow", glow, 7, "a disk grows from the place of most gain")
register_reveal("flip", flip, 16, "blocks flip in zig-zag chains")
register_reveal("dissolve", dissolve, 16, "random cells flip to the target")
