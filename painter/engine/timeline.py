"""Events on the canvas and the frames drawn from them.

Every painting action (a stroke, one step of a fade, a glow ring, a flipped block, a
dissolve step) is an :class:`Event`: in some channels, inside a small window, the canvas
moves toward the schedule's target by a per-pixel weight. Generating events needs the
canvas (strokes go where the canvas lacks most), so painting runs in two passes: the
painters generate events while updating a working canvas, then :func:`render` replays the
events and emits frames at chosen times. Frames may fall inside an event (a stroke drawn
in over several frames), which is what lets frames be paced by visible change rather
than by event count.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch

from .decisions import locate, ranked
from .limits import LIMITS, check_budget


@dataclass(frozen=True, eq=False)
class Painting:
    """Painted frames and their stroke maps, aligned frame by frame.

    frames:   [N,C,H,W] canvas latents; frames[0] is the initial canvas and frames[-1]
              equals the plan's final latent bit for bit.
    strokes:  [N,H,W] float 0..1, where the canvas changed since the previous frame.
    channels: [N,H,W] int16, the channel painted there in this frame; -1 where nothing
              landed, -2 where an action painted several channels at once.
    coverage: [N,H,W] float >= 0, the cumulative stroke accumulator (overlaps add up);
              0 where nothing ever landed (the paper-white areas of a white canvas).
    schedule: [N] int64, the schedule (target index) each frame belongs to.
    """

    frames: torch.Tensor
    strokes: torch.Tensor
    channels: torch.Tensor
    coverage: torch.Tensor
    schedule: torch.Tensor

    def __len__(self) -> int:
        return self.frames.shape[0]


SEVERAL_CHANNELS = -2
NO_CHANNEL = -1


@dataclass(frozen=True, eq=False)
class Event:
    """In ``channels``, inside the window at (top, left) of ``mask``'s size, move the canvas
    toward targets[target_index] by ``mask`` (0 = keep, 1 = copy the target exactly).

    mask:   [h,w] (same weights in every channel) or [k,h,w] (one row per channel).
    change: visible change the event made when it was generated (for pacing).
    weight: its share of a frame when frames are paced by event count.
    lead:   the channel that leads a group of channels painted as one stroke; the stroke
            map shows the event in its colour (None: one channel, or an action over several).
    sweep:  how a frame shows the event part done: False = the whole footprint moves by that
            share (faded in); True = drawn in, from the footprint's centre out, each place
            moving all the way (its full weight) once reached, so a part-done event is no blend
            of before and after (see :func:`drawn_in`).
    """

    target_index: int
    channels: torch.Tensor
    top: int
    left: int
    mask: torch.Tensor
    change: float
    weight: float = 1.0
    lead: int | None = None
    sweep: bool = False

    @property
    def window(self) -> tuple[slice, slice]:
        height, width = self.mask.shape[-2:]
        return slice(self.top, self.top + height), slice(self.left, self.left + width)

    @property
    def map_channel(self) -> int:
        if self.lead is not None:
            return self.lead
        return int(self.channels[0]) if self.channels.numel() == 1 else SEVERAL_CHANNELS

    @property
    def footprint(self) -> torch.Tensor:
        """[h,w] strength of the event at each position (largest over its channels)."""
        return self.mask if self.mask.dim() == 2 else self.mask.amax(0)


def blend(region: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Move ``region`` toward ``target`` by ``weight``; weight 1 copies the target bit for bit."""
    return torch.where(weight >= 1, target, torch.lerp(region, target, weight))


def turning_shares(priority: torch.Tensor, mass: torch.Tensor, kind: str) -> torch.Tensor:
    """Places taken one by one, highest ``priority`` first (ties: the lower index): for each place,
    the share of the whole ``mass`` (>= 0, same shape) taken before it. A place is in once a share
    passes its value; share 1 takes every place that carries mass."""
    flat = priority.flatten()
    order = ranked(flat, flat.numel(), kind)
    carried = mass.flatten()[order].cumsum(0)
    turns = torch.empty_like(carried)
    turns[order] = torch.cat([carried.new_zeros(1), carried[:-1]]) / carried[-1].clamp_min(torch.finfo(carried.dtype).tiny)
    return turns.view(priority.shape)


def drawn_in(footprint: torch.Tensor, change: torch.Tensor, share: float) -> torch.Tensor:
    """[h,w] 0/1: the places of ``footprint`` an event drawn in from its centre has reached when
    ``share`` of its ``change`` ([h,w], how much each place moves) is done: places are taken in
    order of distance from the footprint's weighted centre (:func:`turning_shares`)."""
    height, width = footprint.shape
    rows = torch.arange(height, device=footprint.device, dtype=footprint.dtype)[:, None]
    cols = torch.arange(width, device=footprint.device, dtype=footprint.dtype)[None, :]
    mass = footprint.sum().clamp_min(torch.finfo(footprint.dtype).tiny)
    centre_row, centre_col = (footprint * rows).sum() / mass, (footprint * cols).sum() / mass
    distance = (rows - centre_row) ** 2 + (cols - centre_col) ** 2
    turns = turning_shares(-distance, change * footprint, "drawn-in order")
    return ((turns < share) & (footprint > 0)).to(footprint.dtype)


def event_weight(event: Event, region: torch.Tensor, goal: torch.Tensor, strength: float) -> torch.Tensor:
    """The weights by which the event moves ``region`` toward ``goal`` when ``strength`` of it is done."""
    if strength >= 1:
        return event.mask
    if event.sweep:
        # which places are reached is decided in float64 on the CPU, so that it does not move with the
        # CPU's kernel set or thread count (as the order of painted-over targets: transition.painted_over)
        change = (goal.detach().to("cpu", torch.float64) - region.detach().to("cpu", torch.float64)).abs().sum(0)
        footprint = event.footprint.detach().to("cpu", torch.float64)
        return event.mask * drawn_in(footprint, change, strength).to(event.mask.device, event.mask.dtype)
    return event.mask * strength


def event_delta(event: Event, canvas: torch.Tensor, targets: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """The blended values the event would write into its window (a new tensor)."""
    rows, cols = event.window
    region = canvas[event.channels, rows, cols]
    goal = targets[event.target_index][event.channels, rows, cols]
    return blend(region, goal, event_weight(event, region, goal, strength).expand_as(region))


def apply_event(event: Event, canvas: torch.Tensor, targets: torch.Tensor, strength: float = 1.0) -> None:
    rows, cols = event.window
    canvas[event.channels, rows, cols] = event_delta(event, canvas, targets, strength)


def visible_change(delta: torch.Tensor, channels: torch.Tensor, rgb: torch.Tensor | None) -> float:
    """How much a change of ``delta`` ([k,h,w] in ``channels``) shows: summed |change| after a
    linear latent->RGB projection when one is known, else summed |change| in latent units."""
    if rgb is None:
        return float(delta.abs().sum())
    return float(torch.einsum("khw,kr->rhw", delta, rgb[channels]).abs().sum())


def make_event(
    *,
    target_index: int,
    channels: torch.Tensor,
    top: int,
    left: int,
    mask: torch.Tensor,
    canvas: torch.Tensor,
    targets: torch.Tensor,
    rgb: torch.Tensor | None,
    weight: float = 1.0,
    lead: int | None = None,
) -> Event:
    """Build an event, apply it to the working ``canvas`` and record how visible it was."""
    event = Event(target_index, channels, top, left, mask, 0.0, weight, lead)
    rows, cols = event.window
    before = canvas[channels, rows, cols]
    after = event_delta(event, canvas, targets)
    canvas[channels, rows, cols] = after
    return Event(target_index, channels, top, left, mask, visible_change(after - before, channels, rgb), weight, lead)


# Bytes per latent pixel of a frame's stroke maps (Painting.strokes, .coverage: float32; .channels: int16).
MAP_BYTES = 4 + 4 + 2


def check_frame_budget(frames: int, latent_shape: tuple[int, ...]) -> None:
    """Refuse a painting of ``frames`` frames of ``latent_shape`` before it is allocated."""
    limit = LIMITS["frames"]
    if frames < 2:
        raise ValueError(f"frames must be at least 2 (the first and the last canvas), got {frames}; use 0 for automatic")
    if frames > limit.high:
        raise ValueError(f"{frames} frames is more than {limit.high:g}; ask for fewer frames")
    channels, pixels = int(latent_shape[0]), math.prod(int(n) for n in latent_shape[1:])
    # each frame: the latent (float32) and its maps (strokes and coverage float32, channels int16), which
    # weigh as much as a 3-channel pixel-space latent
    check_budget("painted frames", frames * pixels * (4 * channels + MAP_BYTES),
                 f"{frames} frames of a {'x'.join(map(str, latent_shape))} latent with their stroke maps",
                 "ask for fewer frames or a smaller latent")


def frame_points(weights: torch.Tensor, goals: torch.Tensor) -> list[tuple[int, float]]:
    """Where each frame after the first falls: (event index, share of that event done).

    ``goals`` are ascending positions in summed weight, so a frame may fall inside an
    event. The last frame always completes the last event: the final canvas is reached.
    """
    cumulative = weights.cumsum(0)
    indices = locate(cumulative, goals, "frame").clamp_max(len(weights) - 1)
    points = []
    for goal, index in zip(goals.tolist(), indices.tolist()):
        start = float(cumulative[index] - weights[index])
        share = 1.0 if weights[index] <= 0 else min(1.0, (goal - start) / float(weights[index]))
        points.append((index, 1.0 if share > 1 - 1e-9 else max(0.0, share)))
    points[-1] = (len(weights) - 1, 1.0)
    return points


def render(
    targets: torch.Tensor,
    canvas: torch.Tensor,
    events: list[Event],
    points: list[tuple[int, float]],
    progress=None,
) -> Painting:
    """Replay ``events`` on a copy of ``canvas`` and emit a frame at each of ``points``
    (see :func:`frame_points`), after the first frame, which is the canvas as given."""
    if not events:
        raise ValueError("nothing to paint (no events): the plan has no schedules")
    frames = len(points) + 1
    _, height, width = canvas.shape
    device = canvas.device
    canvas = canvas.clone()
    out = torch.empty((frames, *canvas.shape), dtype=canvas.dtype, device=device)
    strokes = torch.zeros((frames, height, width), device=device)
    channel_map = torch.full((frames, height, width), NO_CHANNEL, dtype=torch.int16, device=device)
    coverage = torch.zeros((frames, height, width), device=device)
    schedule = torch.zeros(frames, dtype=torch.int64)
    accumulated = torch.zeros((height, width), device=device)
    out[0] = canvas
    schedule[0] = events[0].target_index

    def mark(frame: int, event: Event, share: float, into: torch.Tensor, strength: torch.Tensor | None = None) -> None:
        rows, cols = event.window
        strength = event.footprint * share if strength is None else strength
        strokes[frame, rows, cols] = torch.maximum(strokes[frame, rows, cols], strength)
        channel_map[frame, rows, cols] = torch.where(strength > 0, event.map_channel, channel_map[frame, rows, cols])
        into[rows, cols] += strength

    done = 0
    for frame, (index, share) in enumerate(points, start=1):
        while done < index or (done == index and share >= 1):
            apply_event(events[done], canvas, targets)
            mark(frame, events[done], 1.0, accumulated)
            done += 1
        out[frame] = canvas
        coverage[frame] = accumulated
        if share < 1 and done == index:
            event = events[index]
            rows, cols = event.window
            region = canvas[event.channels, rows, cols]
            goal = targets[event.target_index][event.channels, rows, cols]
            weight = event_weight(event, region, goal, share)
            out[frame][event.channels, rows, cols] = blend(region, goal, weight.expand_as(region))
            mark(frame, event, share, coverage[frame], weight if weight.dim() == 2 else weight.amax(0))
        schedule[frame] = events[min(index, len(events) - 1)].target_index
        if progress is not None:
            progress(frame, frames - 1)
    return Painting(out, strokes, channel_map, coverage, schedule)
