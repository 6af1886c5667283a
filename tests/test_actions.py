"""Reveal actions (painter/engine/actions.py): the one registry, and what each reveal does to a schedule."""

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.actions import REVEALS, Action, run_action
from latent_painter.painter.engine.stages import Workbench


def one_schedule(action, plan, seed=0):
    bench = Workbench(torch.zeros_like(plan.final), plan.targets[0].abs().clone(), None, seed=seed)
    allowed = torch.ones(plan.final.shape[0], dtype=torch.bool)
    events = run_action(action, bench, plan.targets, 0, allowed, schedule=0)
    return events, bench


def test_one_registry_holds_name_default_frames_function_and_description():
    assert {name: reveal.default_frames for name, reveal in REVEALS.items()} == {
        "fade": 8, "glow": 7, "flip": 16, "dissolve": 16}
    for name, reveal in REVEALS.items():
        assert reveal.name == name and callable(reveal.function) and reveal.description
        assert Action(name).frames_per_schedule == reveal.default_frames
    assert Action("flip", frames=3).frames_per_schedule == 3


@pytest.mark.parametrize("kind", ["fade", "glow", "dissolve"])
def test_whole_canvas_reveals_reach_the_target_in_one_schedule(kind):
    plan = blurry_to_sharp_plan(steps=3)
    events, bench = one_schedule(Action(kind, frames=5), plan)
    assert len(events) == 5
    assert torch.equal(bench.canvas, plan.targets[0])


def test_fade_steps_change_the_canvas_by_equal_amounts():
    plan = blurry_to_sharp_plan(steps=3)
    events, _ = one_schedule(Action("fade", frames=4), plan)
    changes = torch.tensor([event.change for event in events])
    assert torch.allclose(changes, changes.mean().expand(4), rtol=1e-4)


def test_glow_rings_grow_and_flip_blocks_do_not_overlap():
    plan = blurry_to_sharp_plan(steps=3, size=24)
    rings, _ = one_schedule(Action("glow", frames=4), plan)
    areas = [float(event.mask.sum()) for event in rings]
    assert areas == sorted(areas) and areas[-1] == 24 * 24
    blocks, _ = one_schedule(Action("flip", frames=10, block=4.0), plan)
    covered = torch.zeros(24, 24)
    for event in blocks:
        rows, cols = event.window
        covered[rows, cols] += event.mask
    assert covered.max() == 1 and len(blocks) == 10


def test_dissolve_follows_the_seed():
    plan = blurry_to_sharp_plan(steps=3)
    first, _ = one_schedule(Action("dissolve", frames=4), plan, seed=1)
    again, _ = one_schedule(Action("dissolve", frames=4), plan, seed=1)
    other, _ = one_schedule(Action("dissolve", frames=4), plan, seed=2)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(first, again))
    assert not all(torch.equal(a.mask, b.mask) for a, b in zip(first, other))
