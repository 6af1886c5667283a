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
from .timeline import Painting, check_frame_budget, turning_shares

# How guidance goes from A to B (Route.interpolation; the Transition node's options, in this order).
GUIDANCES = ("over",) + INTERPOLATIONS


@dataclass(frozen=True)
class Route:
    """How a transition travels from A to B.

    depth:         share of each schedule to go back through (0 = straight from A's final
                   latent toward B's; 1 = back to A's roughest prediction and up again
                   from B's roughest). Deeper is longer and blurrier in the middle.
    guidance:      0..1 weight of the guidance targets in every route target (1 = the
                   guidance alone: crisp, for shared-background edits).
    guidance_steps: schedules of the route when depth is 0 (the guided plans).
    interpolation: how guidance goes from A's final latent to B's: ``over`` = B painted over A
                   region by region (:func:`painted_over`); ``lerp``/``slerp`` = latents
                   interpolated between the two (the changed region cross-fades).
    resize:        resize B to A's latent size instead of refusing different sizes.
    """

    depth: float = 0.5
    guidance: float = 0.0
    guidance_steps: int = 12
    interpolation: str = "over"
    resize: bool = False

    def __post_init__(self):
        for name in ("depth", "guidance", "guidance_steps"):
            checked(name, getattr(self, name))
        if self.interpolation not in GUIDANCES:
            raise ValueError(f"interpolation {self.interpolation!r} is unknown; use {', '.join(GUIDANCES)}")

    @property
    def paints_over(self) -> bool:
        """The route's guidance paints B over A (then strokes are drawn in, never faded in)."""
        return self.guidance > 0 and self.interpolation == "over"


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
    straight = back == 0 and forth == 0
    if straight:
        targets = b.final[None].expand(route.guidance_steps, *b.final.shape)
    if route.guidance > 0:
        shares = torch.arange(1, targets.shape[0] + 1, dtype=torch.float32) / targets.shape[0]
        if route.interpolation != "over":
            targets = torch.lerp(targets, interpolate(a.final, b.final, shares, route.interpolation), route.guidance)
        elif straight:
            # No plan route to mix in (it is B throughout): guidance sets how gradually B is painted over
            # A, from all at once (0) to one region more per schedule (1); no target is ever a blend.
            targets = painted_over(a.final, b.final, 1 - route.guidance * (1 - shares))
        elif route.guidance >= 1:
            targets = painted_over(a.final, b.final, shares)
        else:
            targets = torch.lerp(targets, painted_over(a.final, b.final, shares), route.guidance)
    targets = targets.clone()
    targets[-1] = b.final  # the route always ends exactly on B
    return targets


def painted_over(a: torch.Tensor, b: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """``a`` with ``b`` painted over it where they differ, more of it at each share: [N,C,H,W].

    Every latent pixel of the result is ``a``'s or ``b``'s, all channels at once, never a blend.
    Places turn to ``b`` in order of the detail ``b`` brings there: first where ``b`` has more
    fine structure than ``a`` (a latent's detail: |x - its 3x3 mean| summed over channels),
    last where it has less, averaged over a window of a sixteenth of the latent's side so the
    regions are patches rather than scattered pixels. So no in-between loses ``a``'s detail
    before ``b``'s arrives (measured with taef2: benchmarks/bench_transition.py). Share s holds
    the first places that carry s of the whole difference |b - a|; share 0 gives ``a`` and
    share 1 gives ``b``, bit for bit."""
    # In float64 on the CPU: the order and the region edges then do not move with the CPU's kernel set or
    # thread count (float32 sums in another order flipped places between regions, tests/README.md).
    a64, b64 = (x.detach().to("cpu", torch.float64) for x in (a, b))
    difference = (b64 - a64).abs().sum(0)
    height, width = difference.shape
    side = max(1, round(min(height, width) / 16))
    brought = _detail(b64) - _detail(a64)
    brought = F.avg_pool2d(brought[None, None], 2 * side + 1, stride=1, padding=side, count_include_pad=False)[0, 0]
    turns = turning_shares(brought, difference, "painted-over order")
    shares = shares.detach().to("cpu", torch.float64).view(-1, 1, 1)
    over = ((shares > turns[None]) | (shares >= 1)).to(a.device)
    return torch.where(over[:, None], b[None], a[None])


def _detail(latent: torch.Tensor) -> torch.Tensor:
    """[H,W] fine structure of a latent [C,H,W]: |x - its 3x3 mean| summed over channels."""
    mean = F.avg_pool2d(latent[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    return (latent - mean).abs().sum(0)


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
                                       decode=decode, paint_over=route.paints_over))
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
