"""Reveal actions: non-stroke ways to move the canvas toward a schedule's target
(DESIGN §1 "Non-stroke actions", ALGORITHM.md §2). Each action makes ``frames`` events
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

import torch
import torch.nn.functional as F

from .gain import information_gain, motivated
from .strokes import Workbench
from .timeline import Event, make_event

ACTION_KINDS = ("fade", "glow", "flip", "dissolve")
# Frames per schedule measured in the author's demos (ALGORITHM.md §2).
DEFAULT_FRAMES = {"fade": 8, "glow": 7, "flip": 16, "dissolve": 16}


@dataclass(frozen=True)
class Action:
    """Settings of a reveal action (JSON-serialisable).

    kind:       fade, glow, flip or dissolve.
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
        where = f"Action ({self.kind})"
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"Action: kind {self.kind!r} is unknown; use one of {', '.join(ACTION_KINDS)}")
        if not 0 <= self.frames <= 1024:
            raise ValueError(f"{where}: frames per schedule must be 0 (default) to 1024, got {self.frames}")
        if not math.isfinite(self.motivation) or self.motivation < 0:
            raise ValueError(f"{where}: motivation must be >= 0, got {self.motivation}")
        if not math.isfinite(self.block) or not 0 < self.block <= 512:
            raise ValueError(f"{where}: block must be in (0, 512] latent pixels, got {self.block}")
        if not math.isfinite(self.fraction) or not 0 < self.fraction <= 1:
            raise ValueError(f"{where}: fraction must be in (0, 1], got {self.fraction}")
        if self.schedules < 0:
            raise ValueError(f"{where}: schedules must be >= 0 (0 = the rest), got {self.schedules}")

    @property
    def frames_per_schedule(self) -> int:
        return self.frames or DEFAULT_FRAMES[self.kind]


def run_action(
    action: Action,
    bench: Workbench,
    targets: torch.Tensor,
    target: int,
    allowed: torch.Tensor,
    schedule: int,
) -> list[Event]:
    """One schedule of ``action`` toward targets[target]; updates ``bench`` in place."""
    canvas = bench.canvas
    channels = allowed.nonzero().flatten()
    # [k,H,W] weights 0/1 of where the action may act at all
    allowed_here = motivated(bench.motivation, action.motivation, allowed)[channels].float()
    count = action.frames_per_schedule
    masks = _REVEALS[action.kind](action, bench, targets[target], allowed, count, schedule)
    events = []
    _, height, width = canvas.shape
    for top, left, mask in masks:
        if action.motivation > 0:
            mask = mask * allowed_here[:, top : top + mask.shape[-2], left : left + mask.shape[-1]]
        events.append(make_event(target, channels, top, left, mask, canvas, targets, bench.rgb))
    if events:
        spent = torch.zeros(height, width, device=canvas.device)
        for event in events:
            rows, cols = event.window
            spent[rows, cols] = torch.maximum(spent[rows, cols], event.footprint)
        bench.motivation[channels] *= 1 - spent * allowed_here
    return events


def _fade(action, bench, plan, allowed, count, schedule):
    # step j of J moves 1/(J-j+1) of the remaining way, so every step changes the canvas
    # by the same amount and the last one lands exactly on the target
    _, height, width = bench.canvas.shape
    ones = torch.ones(height, width, device=bench.canvas.device)
    return [(0, 0, ones / (count - step)) for step in range(count)]


def _glow(action, bench, plan, allowed, count, schedule):
    canvas = bench.canvas
    _, height, width = canvas.shape
    gain = information_gain(plan, canvas)[allowed].sum(0)
    blurred = F.avg_pool2d(gain[None, None], 5, stride=1, padding=2, count_include_pad=False)[0, 0]
    cy, cx = divmod(int(blurred.flatten().argmax()), width)
    rows = torch.arange(height, device=canvas.device, dtype=torch.float32)[:, None]
    cols = torch.arange(width, device=canvas.device, dtype=torch.float32)[None, :]
    distance = ((rows - cy) ** 2 + (cols - cx) ** 2).sqrt()
    reach = float(distance.max())
    # each ring is a hard disk; the last covers the whole canvas
    return [(0, 0, (distance <= reach * (step + 1) / count + 1e-6).float()) for step in range(count)]


def _flip(action, bench, plan, allowed, count, schedule):
    canvas = bench.canvas
    _, height, width = canvas.shape
    side = max(1, round(action.block * math.sqrt(height * width) / 64))
    gain = information_gain(plan, canvas)[allowed].sum(0)
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
            candidate = divmod(int(open_scores.flatten().argmax()), cols_b)
        flipped[candidate] = True
        position = candidate
        top, left = candidate[0] * side, candidate[1] * side
        block = torch.ones(min(side, height - top), min(side, width - left), device=canvas.device)
        masks.append((top, left, block))
    return masks


def _dissolve(action, bench, plan, allowed, count, schedule):
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


_REVEALS = {"fade": _fade, "glow": _glow, "flip": _flip, "dissolve": _dissolve}
