"""Paint a plan: run a chain of painters (stroke runs and reveal actions) over the schedule
targets, finish exactly on the final latent, and emit frames.

A chain is a tuple of stages (:class:`Strokes` or :class:`Action`); each stage paints a
number of consecutive schedules. After the last schedule a short clean-up fade closes
whatever residual the restrictions left, so the last frame is the final latent bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from .actions import Action, run_action
from .gain import channel_mask, information_gain
from .plan import Plan, PlanError, check_latent
from .strokes import Strokes, Workbench, paint_schedule
from .timeline import (
    Event,
    Painting,
    calibrated_goals,
    check_frame_budget,
    even_goals,
    frame_points,
    make_event,
    pacing_weights,
    render,
)

PACINGS = ("strokes", "change")
Stage = Strokes | Action


@dataclass(frozen=True)
class PaintOptions:
    """How frames are drawn from the painting.

    frames:         total frames, the initial canvas included; 0 = one frame per
                    ``strokes_per_frame`` strokes (or per action step).
    pacing:         "strokes": frames follow the painting actions evenly (the author's look);
                    "change": frames fall at equal steps of estimated visible change, so
                    the animation neither rushes nor stalls (a stroke may be drawn in over
                    several frames).
    cleanup_frames: frames of the closing fade that removes what the restrictions left.
    seed:           seeds the random actions (dissolve); painting is otherwise deterministic.
    """

    frames: int = 0
    pacing: str = "change"
    cleanup_frames: int = 24
    seed: int = 0

    def __post_init__(self):
        if self.pacing not in PACINGS:
            raise ValueError(f"pacing {self.pacing!r} is unknown; use one of {', '.join(PACINGS)}")
        if self.frames != 0 and self.frames < 2:
            raise ValueError(f"frames must be 0 (automatic) or at least 2, got {self.frames}")
        if not 0 <= self.cleanup_frames <= 10_000:
            raise ValueError(f"cleanup_frames must be 0..10000, got {self.cleanup_frames}")


def assign_schedules(stages: tuple[Stage, ...], schedules: int) -> list[int]:
    """How many schedules each stage paints: fixed counts first (in order, as far as they
    fit), then stages asking for 0 share what is left; a lone stage takes everything."""
    if not stages:
        raise ValueError("painter: the chain is empty; connect a Painter or Painter Action")
    counts, left = [], schedules
    for stage in stages:
        take = min(stage.schedules, left)
        counts.append(take)
        left -= take
    flexible = [i for i, stage in enumerate(stages) if stage.schedules == 0]
    if not flexible and left > 0:
        flexible = [len(stages) - 1]  # the last stage paints any schedules nobody claimed
    for rank, index in enumerate(flexible):
        counts[index] += left // len(flexible) + (1 if rank < left % len(flexible) else 0)
    return counts


def generate_events(
    targets: torch.Tensor,
    canvas: torch.Tensor,
    stages: tuple[Stage, ...],
    options: PaintOptions,
    rgb: torch.Tensor | None = None,
    progress=None,
) -> list[Event]:
    """Run the chain over ``targets`` on a working copy of ``canvas``; returns the events."""
    schedules, channels = targets.shape[0], targets.shape[1]
    bench = Workbench(canvas=canvas.clone(), motivation=torch.zeros_like(canvas), rgb=rgb, seed=options.seed)
    allowed = [channel_mask(tuple(s.channels), channels, canvas.device, where=type(s).__name__) for s in stages]
    events: list[Event] = []
    target = 0
    for index, (stage, count) in enumerate(zip(stages, assign_schedules(stages, schedules))):
        for _ in range(count):
            bench.motivation += information_gain(targets[target], bench.canvas)
            share = target / max(1, schedules - 1)
            if isinstance(stage, Strokes):
                events += paint_schedule(stage, bench, targets, target, allowed[index], share)
            else:
                events += run_action(stage, bench, targets, target, allowed[index], target)
            target += 1
            if progress is not None:
                progress(target, schedules)
    events += cleanup(bench, targets, options.cleanup_frames)
    return events


def cleanup(bench: Workbench, targets: torch.Tensor, frames: int) -> list[Event]:
    """Fade what is left onto the final target; the last step copies it exactly."""
    final = targets.shape[0] - 1
    if torch.equal(bench.canvas, targets[final]):
        return []
    _, height, width = bench.canvas.shape
    everything = torch.arange(bench.canvas.shape[0], device=bench.canvas.device)
    ones = torch.ones(height, width, device=bench.canvas.device)
    steps = max(1, frames)
    return [
        make_event(final, everything, 0, 0, ones / (steps - step), bench.canvas, targets, bench.rgb)
        for step in range(steps)
    ]


def natural_frames(events: list[Event]) -> int:
    return 1 + math.ceil(sum(e.weight for e in events) - 1e-9)


def paint_targets(
    targets: torch.Tensor,
    canvas: torch.Tensor,
    stages: tuple[Stage, ...],
    options: PaintOptions = PaintOptions(),
    rgb: torch.Tensor | None = None,
    progress=None,
    where: str = "paint",
    decode=None,
) -> Painting:
    """Paint ``targets`` [K,C,H,W] (the last is the final latent) onto ``canvas`` [C,H,W].

    ``rgb`` ([C,3], optional) is a linear latent->RGB projection used to estimate how
    visible a change is when pacing by change; ``decode`` (optional, a VAE's
    ``decode(latents) -> images``) corrects that estimate with a few decoded probe frames.
    ``progress(done, total)`` may raise to stop.
    """
    targets = check_latent(targets, "schedule targets", dims=4, where=where)
    canvas = check_latent(canvas, "initial canvas", dims=3, where=where).to(targets.device)
    if canvas.shape != targets.shape[1:]:
        raise PlanError(
            f"{where}: the initial canvas has shape {tuple(canvas.shape)} but the plan's latents are "
            f"{tuple(targets.shape[1:])}; use a canvas latent of the same size and channels (or none)"
        )
    if rgb is not None:
        rgb = rgb.to(device=targets.device, dtype=torch.float32)
    by_change = options.pacing == "change"
    phases = 3 if by_change and decode is not None else 2
    events = generate_events(targets, canvas, tuple(stages), options, rgb, _phase(progress, 0, phases))
    frames = options.frames or natural_frames(events)
    check_frame_budget(frames, tuple(canvas.shape))
    weights = pacing_weights(events, by_change)
    if phases == 3:
        goals = calibrated_goals(weights, frames, targets, canvas, events, decode, rgb, _phase(progress, 1, phases))
    else:
        goals = even_goals(weights, frames)
    return render(targets, canvas, events, frame_points(weights, goals), _phase(progress, phases - 1, phases))


PROGRESS_STEPS = 1000


def _phase(progress, phase: int, phases: int):
    """Map a phase's (done, total) onto one bar of equal parts: generating events, decoding
    the calibration probes (when asked for), rendering frames."""
    if progress is None:
        return None
    part = PROGRESS_STEPS // phases
    last = phase == phases - 1
    return lambda done, total: progress(
        PROGRESS_STEPS if last and done >= total else phase * part + done * part // max(1, total), PROGRESS_STEPS
    )


def paint(
    plan: Plan,
    stages: tuple[Stage, ...] = (Strokes(),),
    options: PaintOptions = PaintOptions(),
    canvas: torch.Tensor | None = None,
    progress=None,
    where: str = "paint",
    decode=None,
) -> Painting:
    """Paint ``plan`` from ``canvas`` (default: the empty, all-zero latent); ``where`` names
    the caller in error messages, ``decode`` calibrates change pacing (see :func:`paint_targets`)."""
    targets = plan.targets
    if canvas is None:
        canvas = torch.zeros_like(plan.final)
    return paint_targets(targets, canvas, stages, options, plan.latent_format.rgb_matrix(), progress, where, decode)


def stages_to_json(stages: tuple[Stage, ...]) -> list[dict]:
    return [{"painter": type(stage).__name__, **asdict(stage)} for stage in stages]


def stages_from_json(data) -> tuple[Stage, ...]:
    """Inverse of :func:`stages_to_json`; unknown painters or fields give a clear error."""
    kinds = {"Strokes": Strokes, "Action": Action}
    if not isinstance(data, list):
        raise ValueError("painter chain: expected a JSON list of stages")
    stages = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or item.get("painter") not in kinds:
            raise ValueError(f"painter chain: stage {number} is not a Strokes or Action stage")
        cls = kinds[item["painter"]]
        known = {f.name for f in fields(cls)}
        extra = set(item) - known - {"painter"}
        if extra:
            raise ValueError(f"painter chain: stage {number} has unknown settings {sorted(extra)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k in known}
        stages.append(cls(**values))
    return tuple(stages)
