"""The stroke painter (painter/engine/strokes.py): where a stroke lands, what it may touch, its budget and motivation."""

import torch
from plans import blurry_to_sharp_plan, replay

from latent_painter.painter.engine.paint import PaintOptions, generate_events
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.engine.stages import Workbench
from latent_painter.painter.engine.strokes import Strokes, paint_schedule


def test_a_stroke_changes_only_its_channel_inside_its_footprint():
    plan = blurry_to_sharp_plan(channels=8)
    strokes = [s for s in replay(plan, (Strokes(brush="soft", channels_per_stroke=1),)) if s[0].channels.numel() == 1]
    assert len(strokes) > 100
    for event, before, after in strokes:
        changed = (after != before)
        outside = torch.ones_like(changed)
        rows, cols = event.window
        inside = torch.zeros_like(changed[0])
        inside[rows, cols] = event.mask > 0
        outside[int(event.channels)] = ~inside
        assert not (changed & outside).any()
        # and inside the footprint the canvas moved toward the plan, never away
        target = plan.targets[event.target_index]
        assert ((after - target).abs() <= (before - target).abs() + 1e-6).all()


def test_stroke_budget_per_schedule_and_carry_over():
    plan = blurry_to_sharp_plan(steps=4)
    settings = Strokes(radii=(1, 2, 3))
    targets = plan.targets
    bench = Workbench(torch.zeros_like(plan.final), torch.zeros_like(plan.final), None)
    allowed = torch.ones(4, dtype=torch.bool)
    bench.motivation += targets[0].abs()
    assert len(paint_schedule(settings, bench, targets, 0, allowed, 0.0)) == 3
    assert bench.carried_strokes == 0
    # a schedule whose target is already on the canvas spends nothing and carries its budget
    still = targets.clone()
    still[1] = bench.canvas
    assert paint_schedule(settings, bench, still, 1, allowed, 0.3) == []
    assert bench.carried_strokes == 3
    bench.motivation += (targets[2] - bench.canvas).abs()
    assert len(paint_schedule(settings, bench, targets, 2, allowed, 0.6)) == 6
    assert bench.carried_strokes == 0


def test_motivation_keeps_strokes_where_gain_has_built_up():
    final = torch.zeros(4, 24, 24)
    final[:, 4:8, 4:8] = 1.0  # only one small patch of the plan differs from the blank canvas
    final[:, 16:18, 16:18] = 0.05
    plan = make_plan(torch.stack([final, final]), final)
    stages = (Strokes(radii=(1,) * 24, motivation=1.0, move_cost=0),)
    events = generate_events(plan.targets, torch.zeros_like(final), stages, PaintOptions(cleanup_frames=1))
    strokes = [e for e in events if e.channels.numel() == 1]
    assert strokes
    for event in strokes:
        rows, cols = event.window
        # every stroke lands on a place where the plan differs from the canvas
        assert ((final[0, rows, cols] != 0) & (event.mask > 0)).any()
    weak = sum(1 for e in strokes if e.window[0].start >= 12)
    strong = len(strokes) - weak
    # the patch with 20x the gain is motivated first and takes most strokes
    assert strong > weak
    unmotivated = generate_events(plan.targets, torch.zeros_like(final), (Strokes(radii=(1,) * 24, move_cost=0),),
                                  PaintOptions(cleanup_frames=1))
    assert len(strokes) <= len([e for e in unmotivated if e.channels.numel() == 1])
