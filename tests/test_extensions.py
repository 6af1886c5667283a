"""A new reveal action and a new pacing method plug in through their registries alone, and
paint through the nodes (Painter Action -> Paint) like the built-in ones."""

from __future__ import annotations

import pytest
import torch

from nodes_support import run
from plans import blurry_to_sharp_plan

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES
from latent_painter.painter.engine import actions, pacing
from latent_painter.painter.engine.paint import stages_from_json, stages_to_json


def stripes(action, bench, target, allowed, count, schedule):
    """Toy reveal: horizontal bands from the top down, one band a step."""
    _, height, width = bench.canvas.shape
    bounds = torch.linspace(0, height, count + 1).round().long().tolist()
    return [(top, 0, torch.ones(bottom - top, width)) for top, bottom in zip(bounds[:-1], bounds[1:]) if bottom > top]


@pytest.fixture
def toy_reveal(monkeypatch):
    monkeypatch.setitem(actions.REVEALS, "stripes", None)  # so teardown removes the entry again
    return actions.register_reveal("stripes", stripes, 4, "bands sweep down from the top")


@pytest.fixture
def toy_pacing(monkeypatch):
    calls = []

    def by_event_count(events, frames, context):
        """Toy pacing: every event counts the same, whatever its weight or change."""
        calls.append((len(events), frames))
        ones = torch.ones(len(events), dtype=torch.float64)
        return pacing.frame_points(ones, pacing.even_goals(ones, frames))

    monkeypatch.setitem(pacing.PACINGS, "events", None)
    pacing.register_pacing("events", by_event_count, "one frame per event, whatever it changes")
    return calls


def test_a_toy_reveal_paints_through_the_nodes(toy_reveal, progress):
    kinds, options = NODES["LatentPainterAction"].INPUT_TYPES()["required"]["kind"]
    assert "stripes" in kinds and "bands sweep down" in options["tooltip"]
    assert "stripes (bands sweep down from the top)" in NODES["LatentPainterAction"].DESCRIPTION
    assert "stripes 4" in NODES["LatentPainterAction"].INPUT_TYPES()["required"]["frames"][1]["tooltip"]

    (chain,) = run("LatentPainterAction", kind="stripes", frames=0, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0)
    assert stages_from_json(stages_to_json(chain)) == chain
    plan = blurry_to_sharp_plan(steps=3)
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=0, pacing="strokes",
                                    cleanup_frames=2, seed=0)
    latents = frames["samples"]
    assert count == 1 + 3 * 4  # 4 bands per schedule, nothing left for the clean-up
    assert torch.equal(latents[-1], plan.final)
    # the first band of the first schedule is the top quarter: it moved, the rest did not
    changed = (latents[1] != latents[0]).any(0)
    assert changed[:4].all() and not changed[4:].any()
    assert torch.equal(latents[4], plan.targets[0])  # the schedule's four bands cover the canvas


def test_a_toy_pacing_paints_through_the_paint_node(toy_pacing, progress):
    pacings, options = NODES["LatentPainterPaint"].INPUT_TYPES()["required"]["pacing"]
    assert "events" in pacings and "events: one frame per event" in options["tooltip"]

    (chain,) = run("LatentPainterAction", kind="fade", frames=3, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0)
    plan = blurry_to_sharp_plan(steps=4)
    frames, _, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=7, pacing="events",
                           cleanup_frames=2, seed=0)
    assert toy_pacing == [(12, 7)]  # 4 schedules x 3 fade steps, asked for 7 frames
    assert count == 7 and torch.equal(frames["samples"][-1], plan.final)
    # one frame every two events: frame 3 falls after event 6, the last fade step of the second schedule
    assert torch.equal(frames["samples"][3], plan.targets[1])


def test_the_registries_are_clean_again():
    assert "stripes" not in actions.REVEALS and "events" not in pacing.PACINGS
    assert list(actions.REVEALS) == ["fade", "glow", "flip", "dissolve"]
    assert list(pacing.PACINGS) == ["strokes", "change"]
