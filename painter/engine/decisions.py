"""The painter's discrete choices, made one way: the best of some scores, or where a position
falls among sorted boundaries.

A painting is decided by a few kinds of choice: the painting channel and the channels that join
it, the centre of a stroke, the place a glow starts or a block flips, and the event each frame
falls in. Every one is made here: :func:`best` is an argmax whose ties go to the lowest index
(torch documents that rule for ``argmax``), :func:`ranked` a stable descending sort, :func:`locate`
a ``searchsorted``.

Why one place. Scores are sums of floats, and another CPU (another vector width, another thread
count) sums them in another order, so a score may move by an ulp. A choice whose two best options
are that close may then flip, which is not a change of behaviour; a choice that flips while its
options were far apart is one. To tell the two apart, :func:`recorded` records every choice made
inside it with its *margin*: how far the winner was from a tie, relative to the scores' size (0 =
tied). The pinned-output tests compare recorded choices exactly, except where the reference's
margin says it was a near tie (tests/README.md). Outside :func:`recorded` nothing is recorded and
each choice costs what its torch call costs.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Choice:
    """One recorded choice: what was chosen (``kind``), the chosen indices, its score and the margin
    to the runner-up as a share of the larger of the two (0 = a tie; inf = no alternative)."""

    kind: str
    chosen: tuple[int, ...]
    score: float
    margin: float


_RECORD: ContextVar[list[Choice] | None] = ContextVar("latent_painter_choices", default=None)


@contextmanager
def recorded():
    """Record every choice made inside the block, in order: ``with recorded() as choices: ...``."""
    choices: list[Choice] = []
    token = _RECORD.set(choices)
    try:
        yield choices
    finally:
        _RECORD.reset(token)


def _relative_gap(first: float, second: float) -> float:
    size = max(abs(first), abs(second))
    return (first - second) / size if size > 0 else 0.0


def best(scores: torch.Tensor, kind: str) -> int:
    """The flat index of the highest score, ties to the lowest index."""
    index = int(scores.argmax())
    record = _RECORD.get()
    if record is not None:
        flat = scores.detach().flatten().double()
        winner = float(flat[index])
        if flat.numel() < 2:
            margin = math.inf
        else:
            others = torch.cat([flat[:index], flat[index + 1 :]])
            margin = _relative_gap(winner, float(others.max()))
        record.append(Choice(kind, (index,), winner, margin))
    return index


def ranked(scores: torch.Tensor, count: int, kind: str) -> torch.Tensor:
    """The indices of the ``count`` highest scores, highest first, ties to the lower index; recorded
    as the set chosen, with the last one in's score and its margin over the first one out (nothing is
    chosen, so nothing recorded, when all are in)."""
    order = torch.sort(scores, descending=True, stable=True).indices
    record = _RECORD.get()
    if record is not None and count < scores.numel():
        values = scores.detach().double()[order]
        last = float(values[count - 1])
        record.append(Choice(kind, tuple(sorted(order[:count].tolist())), last, _relative_gap(last, float(values[count]))))
    return order[:count]


def above(values: torch.Tensor, level: float, kind: str) -> torch.Tensor:
    """Bool mask of ``values > level``; recorded with how many passed and the closest value's
    distance to the level, as a share of the level."""
    passed = values > level
    record = _RECORD.get()
    if record is not None:
        closest = float((values.detach().double() - level).abs().min()) if values.numel() else math.inf
        margin = closest / abs(level) if level != 0 else closest
        record.append(Choice(kind, (int(passed.sum()),), level, margin))
    return passed


def locate(boundaries: torch.Tensor, positions: torch.Tensor, kind: str) -> torch.Tensor:
    """For each of ``positions``, the index of the first of the ascending ``boundaries`` at or after
    it (``torch.searchsorted``); recorded with its distance to the nearest boundary, as a share of
    the last boundary."""
    indices = torch.searchsorted(boundaries, positions)
    record = _RECORD.get()
    if record is not None:
        scale = float(boundaries[-1].abs()) if boundaries.numel() else 0.0
        bounds = boundaries.detach().double().cpu()
        for position, index in zip(positions.detach().double().cpu().tolist(), indices.cpu().tolist()):
            near = [abs(position - float(bounds[i])) for i in (index - 1, index) if 0 <= i < bounds.numel()]
            margin = min(near) / scale if near and scale > 0 else math.inf
            record.append(Choice(kind, (int(index),), position, margin))
    return indices


__all__ = ["Choice", "above", "best", "locate", "ranked", "recorded"]
