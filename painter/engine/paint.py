"""Paint a plan: run a chain of painters (stroke runs and reveal actions) over the schedule
targets, finish exactly on the final latent, and emit frames.

A chain is a tuple of stages (see :mod:`painter.stages`: :class:`Strokes`, :class:`Action`, or
any registered stage); each stage paints a number of consecutive schedules. After the last schedule a short clean-up fade closes
whatever residual the restrictions left, so the last frame is the final latent bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .gain import channel_mask, information_gain
from .limits import checked
from .pacing import PacingContext, pacing_method
from .plan import Plan, PlanError, check_latent
from .projection import fit_rgb_to_decoder, principal_projection
from .stages import Stage, Workbench, stages_from_json, stages_to_json  # noqa: F401 - the chain's JSON form
from .strokes import Strokes
from . import actions  # noqa: E402,F401 - registers the Action stage (after Strokes: the JSON error lists them so)
from .timeline import Event, Painting, check_frame_budget, make_event, render


@dataclass(frozen=True)
class PaintOptions:
    """How frames are drawn from the painting.

    frames:         total frames, the initial canvas included; 0 = one frame per
                    ``strokes_per_frame`` strokes (or per action step).
    pacing:         a registered pacing method (painter.pacing.PACINGS): "strokes": frames
                    follow the painting actions evenly (the author's look); "change": frames
                    fall at equal steps of estimated visible change, so the animation neither
                    rushes nor stalls (a stroke may be drawn in over several frames).
    cleanup_frames: frames of the closing fade that removes what the restrictions left.
    seed:           seeds the random actions (dissolve); painting is otherwise deterministic.
    """

    frames: int = 0
    pacing: str = "change"
    cleanup_frames: int = 24
    seed: int = 0

    def __post_init__(self):
        pacing_method(self.pacing)
        checked("frames", self.frames)
        if self.frames == 1:
            raise ValueError("frames must be 0 (automatic) or at least 2 (the first and the last canvas), got 1")
        checked("cleanup_frames", self.cleanup_frames)
        checked("seed", self.seed)


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
    *,
    rgb: torch.Tensor | None = None,
    progress=None,
    whole_pixels: bool = False,
) -> list[Event]:
    """Run the chain over ``targets`` on a working copy of ``canvas``; returns the events.
    ``whole_pixels``: strokes paint every channel of the pixels they touch (:class:`Workbench`)."""
    schedules, channels = targets.shape[0], targets.shape[1]
    bench = Workbench(canvas=canvas.clone(), motivation=torch.zeros_like(canvas), rgb=rgb, seed=options.seed,
                      whole_pixels=whole_pixels)
    allowed = []
    for number, stage in enumerate(stages, start=1):
        try:
            allowed.append(channel_mask(tuple(stage.channels), channels, canvas.device))
        except ValueError as error:
            raise ValueError(f"stage {number} of the chain ({type(stage).__name__}): {error}") from None
    events: list[Event] = []
    target_index = 0
    for stage, stage_allowed, count in zip(stages, allowed, assign_schedules(stages, schedules)):
        for _ in range(count):
            bench.motivation += information_gain(targets[target_index], bench.canvas)
            share = target_index / max(1, schedules - 1)
            events += stage.paint(bench, targets, target_index, stage_allowed, share)
            target_index += 1
            if progress is not None:
                progress(target_index, schedules)
    events += cleanup(bench, targets, options.cleanup_frames)
    if not events:
        # The canvas was the final latent from the start (e.g. a transition from an image to
        # itself): one event that changes nothing, so the frames hold that image.
        everything = torch.arange(channels, device=canvas.device)
        ones = torch.ones(canvas.shape[1:], device=canvas.device)
        events = [make_event(target_index=schedules - 1, channels=everything, top=0, left=0, mask=ones,
                             canvas=bench.canvas, targets=targets, rgb=bench.rgb)]
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
        make_event(target_index=final, channels=everything, top=0, left=0, mask=ones / (steps - step),
                   canvas=bench.canvas, targets=targets, rgb=bench.rgb)
        for step in range(steps)
    ]


def natural_frames(events: list[Event]) -> int:
    return 1 + math.ceil(sum(e.weight for e in events) - 1e-9)


def paint_targets(
    targets: torch.Tensor,
    canvas: torch.Tensor,
    stages: tuple[Stage, ...],
    options: PaintOptions = PaintOptions(),
    *,
    rgb: torch.Tensor | None = None,
    progress=None,
    decode=None,
    paint_over: bool = False,
) -> Painting:
    """Paint ``targets`` [K,C,H,W] (the last is the final latent) onto ``canvas`` [C,H,W].

    ``rgb`` ([C,3], optional) is a linear latent->RGB projection used to estimate how
    visible a change is when pacing by change: with a decoder but no ``rgb`` it is fitted to
    the decoder, without either the final latent's principal directions stand in for it
    (:func:`projection.principal_projection`). ``decode`` (optional, a VAE's
    ``decode(latents) -> images``) is handed to the pacing method (change pacing corrects its
    estimate with a few decoded probe frames).
    ``paint_over`` (a transition painting B over A asks for it): no frame blends a place's
    before and after. Strokes paint every channel of the pixels they touch (a partial channel
    group would leave a pixel part A and part B), and frames that fall inside an event show it
    drawn in from its centre rather than faded in (:attr:`timeline.Event.sweep`).
    ``progress(done, total)`` may raise to stop.
    """
    targets = check_latent(targets, "schedule targets", dims=4)
    canvas = check_latent(canvas, "initial canvas", dims=3).to(targets.device)
    if canvas.shape != targets.shape[1:]:
        raise PlanError(
            f"the initial canvas has shape {tuple(canvas.shape)} but the plan's latents are "
            f"{tuple(targets.shape[1:])}; use a canvas latent of the same size and channels (or none)"
        )
    if rgb is not None:
        rgb = rgb.to(device=targets.device, dtype=torch.float32)
    pacing = pacing_method(options.pacing)
    if options.frames:  # refused before any painting: a pixel-space latent is 64x an 8x VAE's in area
        check_frame_budget(options.frames, tuple(canvas.shape))
    decodes = pacing.decodes and decode is not None
    if decodes and rgb is None:
        # No preview factors for this latent format: fit them to the connected decoder, so
        # the change estimate sees colour, not raw latent units (measured in bench_look).
        rgb = fit_rgb_to_decoder(torch.cat([canvas[None], targets]), decode)
    if rgb is None:
        # Nor a decoder (or one the fit cannot read): see change along the directions the
        # finished latent varies most in.
        rgb = principal_projection(targets[-1])
    phases = 3 if decodes else 2
    events = generate_events(targets, canvas, tuple(stages), options, rgb=rgb, progress=_phase(progress, 0, phases),
                             whole_pixels=paint_over)
    if paint_over:
        events = [replace(event, sweep=True) for event in events]
    frames = options.frames or natural_frames(events)
    check_frame_budget(frames, tuple(canvas.shape))
    context = PacingContext(targets, canvas, rgb, decode if decodes else None,
                            _phase(progress, 1, phases) if decodes else None)
    points = pacing.function(events, frames, context)
    return render(targets, canvas, events, points, _phase(progress, phases - 1, phases))


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
    *,
    progress=None,
    decode=None,
) -> Painting:
    """Paint ``plan`` from ``canvas`` (default: the empty, all-zero latent); ``decode`` calibrates
    change pacing (see :func:`paint_targets`)."""
    targets = plan.targets
    if canvas is None:
        canvas = torch.zeros_like(plan.final)
    return paint_targets(targets, canvas, stages, options, rgb=plan.latent_format.rgb_matrix(), progress=progress,
                         decode=decode)
