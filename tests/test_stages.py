"""The stage protocol and registry (painter/engine/stages.py): chains, schedules per stage, JSON."""

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.actions import Action
from latent_painter.painter.engine.paint import assign_schedules
from latent_painter.painter.engine.stages import STAGES, Stage, Workbench, is_stage, stages_from_json, stages_to_json
from latent_painter.painter.engine.strokes import Strokes


def test_chains_assign_schedules_and_serialise():
    stages = (Strokes(schedules=10), Action("fade", schedules=0), Action("glow", schedules=2))
    assert assign_schedules(stages, 30) == [10, 18, 2]
    assert assign_schedules(stages, 11) == [10, 0, 1]
    assert assign_schedules((Strokes(schedules=3),), 5) == [5]
    assert stages_from_json(stages_to_json(stages)) == stages
    with pytest.raises(ValueError, match="unknown settings"):
        stages_from_json([{"painter": "Strokes", "radius": 3}])


def test_every_stage_kind_is_registered_and_shares_one_call():
    assert STAGES == {"Strokes": Strokes, "Action": Action}
    plan = blurry_to_sharp_plan()
    allowed = torch.ones(4, dtype=torch.bool)
    for stage in (Strokes(), Action("glow")):
        assert isinstance(stage, Stage) and is_stage(stage)
        bench = Workbench(torch.zeros_like(plan.final), plan.targets[0].abs().clone(), None)
        events = stage.paint(bench, plan.targets, 0, allowed, 0.0)
        assert events and all(event.target_index == 0 for event in events)
        assert not torch.equal(bench.canvas, torch.zeros_like(plan.final))  # the bench carries the work on
    assert not is_stage("Strokes") and not is_stage(None)


def test_unknown_painters_in_json_are_refused():
    with pytest.raises(ValueError, match="not a Strokes or Action stage"):
        stages_from_json([{"painter": "Spray"}])
    with pytest.raises(ValueError, match="JSON list"):
        stages_from_json({"painter": "Strokes"})
