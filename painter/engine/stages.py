"""The stage protocol: what every painter stage of a chain (a stroke run, a reveal action)
is, how the chain hands state from one to the next, and the registry that names stage
classes for JSON.

A stage is a frozen, JSON-serialisable dataclass with a ``channels`` tuple (empty = all), a
``schedules`` count (0 = its share of the rest) and one method::

    stage.paint(bench, targets, target_index, allowed, share) -> list[Event]

which paints one schedule toward ``targets[target_index]`` inside the ``allowed`` channels,
updating the :class:`Workbench` in place (``share`` is the schedule's place in the whole
painting, 0 at the first and 1 at the last). A new stage kind = one such class decorated
with :func:`register_stage`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Protocol, runtime_checkable

import torch

from .timeline import Event


@dataclass
class Workbench:
    """The mutable state that carries from one schedule (and one stage) to the next."""

    canvas: torch.Tensor
    motivation: torch.Tensor
    rgb: torch.Tensor | None
    seed: int = 0
    position: tuple[int, int] | None = None
    channel: int | None = None
    carried_strokes: int = 0
    whole_pixels: bool = False  # strokes paint every channel of their pixels (a transition painting B over A)


@runtime_checkable
class Stage(Protocol):
    channels: tuple[int, ...]
    schedules: int

    def paint(
        self, bench: Workbench, targets: torch.Tensor, target_index: int, allowed: torch.Tensor, share: float
    ) -> list[Event]: ...


# JSON name ("painter" field) -> stage class; filled by register_stage.
STAGES: dict[str, type] = {}


def register_stage(cls: type) -> type:
    """Class decorator: make ``cls`` a stage kind known to chains and to their JSON form."""
    STAGES[cls.__name__] = cls
    return cls


def is_stage(value) -> bool:
    return STAGES.get(type(value).__name__) is type(value)


def stages_to_json(stages: tuple[Stage, ...]) -> list[dict]:
    return [{"painter": type(stage).__name__, **asdict(stage)} for stage in stages]


def stages_from_json(data) -> tuple[Stage, ...]:
    """Inverse of :func:`stages_to_json`; unknown painters or fields give a clear error."""
    if not isinstance(data, list):
        raise ValueError("painter chain: expected a JSON list of stages")
    stages = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or item.get("painter") not in STAGES:
            raise ValueError(f"painter chain: stage {number} is not a {' or '.join(STAGES)} stage")
        cls = STAGES[item["painter"]]
        known = {f.name for f in fields(cls)}
        extra = set(item) - known - {"painter"}
        if extra:
            raise ValueError(f"painter chain: stage {number} has unknown settings {sorted(extra)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in item.items() if k in known}
        stages.append(cls(**values))
    return tuple(stages)
