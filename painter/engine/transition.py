"""Transitions between images (the paper's transitions: ARCHITECTURE.md "The idea").

The canvas starts on image A's final latent. The route runs A's schedule backward (the
canvas unpaints A toward its rough early predictions) to a chosen depth, then B's schedule
forward from the same depth, and the painting ends exactly on B's final latent. Guidance
blends each route target with the latent interpolated between A and B at the same point
of the route: for pairs that share a background (an edit of one scene) the in-between
frames then stay crisp instead of passing through the blur of early predictions.
A and B may come from different checkpoints when they share a latent space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .interpolate import INTERPOLATIONS, interpolate  # noqa: F401 - Route's choices
from .paint import PaintOptions, paint_targets
from .plan import Plan, PlanError, make_plan
from .stages import Stage
from .limits import checked
from .timeline import Painting, check_frame_budget

@dataclass(frozen=True)
class Route:
    """How a transition travels from A to B.

    depth:         share of each schedule to go back through (0 = straight from A's final
                   latent toward B's; 1 = back to A's roughest prediction and up again
                   from B's roughest). Deeper is longer and blurrier in the middle.
    guidance:      0..1 weight of the interpolated latents in every route target
                   (1 = the interpolations alone: crisp, for shared-background edits).
    guidance_steps: schedules of the route when depth is 0 (the interpolated plans).
    interpolation: lerp or slerp between the two final latents.
    resize:        resize B to A's latent size instead of refusing different sizes.
    """

    depth: float = 0.5
    guidance: float = 0.0
    guidance_steps: int = 12
    interpolation: str = "lerp"
    resize: bool = False

    def __post_init__(self):
        for name in ("depth", "guidance", "guidance_steps"):
            checked(name, getattr(self, name))
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r} is unknown; use lerp or slerp")


def check_same_space(a: Plan, b: Plan, resize: bool = False, names=("A", "B")) -> Plan:
    """Return ``b`` ready to share a canvas with ``a``, or refuse with both formats named."""
    fa, fb = a.latent_format, b.latent_format
    known = "unknown" not in (fa.name, fb.name)
    if a.channels != b.channels or (known and not fa.same_space(fb)):
        raise PlanError(
            f"plan {names[0]} is in latent format {fa.describe()} but plan {names[1]} is in "
            f"{fb.describe()}; transitions need two checkpoints that share a latent space (same VAE family)"
        )
    if a.spatial == b.spatial:
        return b
    if not resize:
        raise PlanError(
            f"plan {names[0]} is {a.spatial[0]}x{a.spatial[1]} latent pixels but plan {names[1]} is "
            f"{b.spatial[0]}x{b.spatial[1]}; sample both at the same size or turn on resize"
        )
    size = a.spatial

    def fit(latents: torch.Tensor) -> torch.Tensor:
        return F.interpolate(latents, size=size, mode="bilinear", align_corners=False)

    return make_plan(fit(b.originals), fit(b.final[None])[0], b.sigmas, b.latent_format)


def route_targets(a: Plan, b: Plan, route: Route) -> torch.Tensor:
    """The schedule targets from A's final latent to B's: backward through A, forward through B."""
    back = round(route.depth * (a.targets.shape[0] - 1))
    forth = round(route.depth * (b.targets.shape[0] - 1))
    backward = a.targets[:-1].flip(0)[:back]
    forward = b.targets[b.targets.shape[0] - 1 - forth :]
    targets = torch.cat([backward, forward])
    if back == 0 and forth == 0:
        targets = b.final[None].expand(route.guidance_steps, *b.final.shape)
    if route.guidance > 0:
        shares = torch.arange(1, targets.shape[0] + 1, dtype=torch.float32) / targets.shape[0]
        straight = interpolate(a.final, b.final, shares, route.interpolation)
        targets = torch.lerp(targets, straight, route.guidance)
    targets = targets.clone()
    targets[-1] = b.final  # the route always ends exactly on B
    return targets


def transition(
    plans: list[Plan],
    stages: tuple[Stage, ...],
    route: Route = Route(),
    options: PaintOptions = PaintOptions(),
    *,
    pingpong: bool = False,
    progress=None,
    decode=None,
) -> Painting:
    """Paint A->B (->C ...) and, with ``pingpong``, back to A; frames of all legs in one painting.
    ``decode`` calibrates change pacing as in :func:`paint_targets`."""
    if len(plans) < 2:
        raise PlanError("give at least two plans (a source and a destination)")
    first = plans[0]
    plans = [first] + [check_same_space(first, p, route.resize, ("A", chr(ord("A") + i))) for i, p in enumerate(plans[1:], 1)]
    stops = plans + plans[-2::-1] if pingpong else plans
    legs = list(zip(stops[:-1], stops[1:]))
    if options.frames:  # refuse an absurd total before painting any leg
        try:
            check_frame_budget(len(legs) * (options.frames - 1) + 1, tuple(first.final.shape))
        except ValueError as error:
            raise ValueError(f"frames ({options.frames} per leg x {len(legs)} legs): {error}") from None
    rgb = first.latent_format.rgb_matrix()
    paintings = []
    for number, (source, destination) in enumerate(legs):
        leg_progress = None
        if progress is not None:
            leg_progress = lambda done, total, n=number: progress(n * total + done, len(legs) * total)
        targets = route_targets(source, destination, route)
        paintings.append(paint_targets(targets, source.final, stages, options, rgb=rgb, progress=leg_progress,
                                       decode=decode))
    return join_paintings(paintings)


def join_paintings(paintings: list[Painting]) -> Painting:
    """One painting from consecutive ones; each join frame (last of one = first of the next)
    is kept once, and coverage keeps accumulating across the joins."""
    parts = [paintings[0]]
    for painting in paintings[1:]:
        offset = parts[-1].coverage[-1]
        parts.append(replace(painting,
                             frames=painting.frames[1:],
                             strokes=painting.strokes[1:],
                             channels=painting.channels[1:],
                             coverage=painting.coverage[1:] + offset,
                             schedule=painting.schedule[1:]))
    return Painting(*(torch.cat([getattr(p, name) for p in parts]) for name in
                      ("frames", "strokes", "channels", "coverage", "schedule")))
