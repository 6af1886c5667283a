"""Pacing: where the frames of a painting fall along its events (ARCHITECTURE.md "Targets": why pacing is a problem of its own).

A pacing method is one function ``(events, frames, context) -> points``: given the events a
chain generated and the number of frames wanted (the first, the initial canvas, included),
it returns where each frame after the first falls, as (event index, share of that event
done) pairs (see :func:`timeline.frame_points`). ``context`` (:class:`PacingContext`) carries
what a method may look at: the schedule targets, the initial canvas, the linear latent->RGB
estimate, an optional decoder and a progress callback for the decoding.

A new pacing method = one such function + one :func:`register_pacing` line; the Paint and
Transition nodes list the registry's names and descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .decisions import locate
from .timeline import Event, frame_points, render, visible_change

FramePoints = list[tuple[int, float]]


@dataclass(frozen=True)
class PacingContext:
    """What a pacing method may use besides the events.

    decode:   a VAE's ``decode(latents) -> images`` or None.
    progress: ``progress(done, total)`` for decoding work, or None (may raise to stop).
    """

    targets: torch.Tensor
    canvas: torch.Tensor
    rgb: torch.Tensor | None = None
    decode: Callable | None = None
    progress: Callable | None = None


@dataclass(frozen=True)
class Pacing:
    """A registered pacing method. ``decodes``: it uses ``context.decode`` when one is given
    (then the progress bar gets a decoding phase)."""

    name: str
    function: Callable[[list[Event], int, PacingContext], FramePoints]
    description: str
    decodes: bool = False


PACINGS: dict[str, Pacing] = {}


def register_pacing(name: str, function, description: str, decodes: bool = False) -> Pacing:
    """Make ``function`` the pacing method ``name`` (the Paint/Transition nodes offer it)."""
    PACINGS[name] = Pacing(name, function, description, decodes)
    return PACINGS[name]


def pacing_method(name: str) -> Pacing:
    if name not in PACINGS:
        raise ValueError(f"pacing {name!r} is unknown; use one of {', '.join(PACINGS)}")
    return PACINGS[name]


def pacing_weights(events: list[Event], by_change: bool) -> torch.Tensor:
    """Each event's share of the animation: its recorded visible change, or its frame weight.
    An animation with no visible change at all falls back to the frame weights."""
    weights = torch.tensor([e.change if by_change else e.weight for e in events], dtype=torch.float64)
    weights = weights.clamp_min(0)
    if float(weights.sum()) <= 0:
        weights = torch.tensor([e.weight for e in events], dtype=torch.float64)
    return weights


def even_goals(weights: torch.Tensor, frames: int) -> torch.Tensor:
    """Positions (in summed weight) of the frames after the first, evenly spaced."""
    return torch.linspace(0, float(weights.sum()), frames, dtype=torch.float64)[1:]


def calibration_probes(frames: int) -> int:
    """About one probe per four frames: fine enough to follow the decoder, at most a quarter
    more decoding than the frames themselves need."""
    return min(64, max(8, frames // 4))


def calibrated_goals(
    weights: torch.Tensor,
    frames: int,
    *,
    targets: torch.Tensor,
    canvas: torch.Tensor,
    events: list[Event],
    decode,
    rgb: torch.Tensor | None = None,
    progress=None,
    probes: int | None = None,
    chunk: int = 8,
) -> torch.Tensor:
    """Frame positions at equal steps of change seen by a real decoder.

    The recorded change of an event is a linear estimate; a decoder is not linear (a change
    on a blank canvas shows more than the same change on a finished one). So a few probe
    frames, evenly spaced by the estimate, are decoded. Between neighbouring probes, the
    ratio of the change the decoder shows to the change the estimate predicts for the same
    two latents is the decoder's gain at that stage of the painting; it rescales the
    estimated changes of the events in between (their path, which may wander more than the
    straight line between the probes), and frames are spaced evenly on that scale.
    """
    probes = max(2, min(probes or calibration_probes(frames), frames - 1))
    knots = even_goals(weights, probes + 1)
    latents = render(targets, canvas, events, frame_points(weights, knots)).frames
    everything = torch.arange(latents.shape[1], device=latents.device)
    predicted = torch.tensor(
        [visible_change(latents[i + 1] - latents[i], everything, rgb) for i in range(probes)], dtype=torch.float64
    )
    seen, previous = [], None
    for start in range(0, latents.shape[0], chunk):
        images = decode(latents[start : start + chunk].contiguous()).to(torch.float32)
        if previous is not None:
            images = torch.cat([previous, images])
        seen.append((images[1:] - images[:-1]).abs().mean(dim=tuple(range(1, images.dim()))).double().cpu())
        previous = images[-1:]
        if progress is not None:
            progress(min(start + chunk, latents.shape[0]), latents.shape[0])
    seen = torch.cat(seen)
    if float(seen.sum()) <= 0 or float(predicted.sum()) <= 0:
        return even_goals(weights, frames)
    gain = torch.where(predicted > 0, seen / predicted.clamp_min(1e-300), torch.zeros_like(seen))
    path = knots - torch.cat([torch.zeros(1, dtype=torch.float64), knots[:-1]])
    estimate = torch.cat([torch.zeros(1, dtype=torch.float64), knots])
    shown = torch.cat([torch.zeros(1, dtype=torch.float64), (gain * path).cumsum(0)])
    wanted = torch.linspace(0, float(shown[-1]), frames, dtype=torch.float64)[1:]
    upper = locate(shown, wanted, "calibrated frame").clamp(1, probes)
    lower = upper - 1
    span = (shown[upper] - shown[lower]).clamp_min(1e-300)
    share = ((wanted - shown[lower]) / span).clamp(0, 1)
    return estimate[lower] + share * (estimate[upper] - estimate[lower])


def pace_by_strokes(events: list[Event], frames: int, context: PacingContext) -> FramePoints:
    """Frames follow the painting actions evenly, by each event's frame weight."""
    weights = pacing_weights(events, by_change=False)
    return frame_points(weights, even_goals(weights, frames))


def pace_by_change(events: list[Event], frames: int, context: PacingContext) -> FramePoints:
    """Frames at equal steps of estimated visible change; with a decoder, of change it shows."""
    weights = pacing_weights(events, by_change=True)
    if context.decode is None:
        goals = even_goals(weights, frames)
    else:
        goals = calibrated_goals(weights, frames, targets=context.targets, canvas=context.canvas, events=events,
                                 decode=context.decode, rgb=context.rgb, progress=context.progress)
    return frame_points(weights, goals)


register_pacing("strokes", pace_by_strokes, "frames follow the painting steps evenly (the author's look)")
register_pacing("change", pace_by_change, "frames fall at equal steps of estimated visible change, so the animation "
                                     "neither rushes nor stalls", decodes=True)
