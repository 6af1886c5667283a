"""Channel groups (issue 10): a stroke paints ``channels_per_stroke`` channels; by default one on
4-channel latents (the author's) and all of them on any other (wider latents; pixel space's R, G, B)."""

from __future__ import annotations

import pytest
import torch
from plans import blurry_to_sharp_plan, replay

from latent_painter.nodes.painters import LatentPainterStrokes
from latent_painter.painter.tools import metrics
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.strokes import Strokes, stroke_group
from latent_painter.painter.engine.timeline import NO_CHANNEL


@pytest.mark.parametrize("channels, expected", [(1, 1), (2, 2), (3, 3), (4, 1), (8, 8), (16, 16), (32, 32), (128, 128)])
def test_automatic_group_is_one_channel_on_four_and_every_channel_otherwise(channels, expected):
    assert Strokes().group_size(channels) == expected


def test_an_explicit_group_never_exceeds_the_latent():
    assert Strokes(channels_per_stroke=3).group_size(16) == 3
    assert Strokes(channels_per_stroke=40).group_size(16) == 16


def test_four_channel_plans_paint_exactly_as_one_channel_per_stroke():
    plan = blurry_to_sharp_plan(channels=4, size=16, steps=5)
    automatic = paint(plan, (Strokes(),), PaintOptions(frames=30))
    single = paint(plan, (Strokes(channels_per_stroke=1),), PaintOptions(frames=30))
    for name in ("frames", "strokes", "channels", "coverage", "schedule"):
        assert torch.equal(getattr(automatic, name), getattr(single, name)), name


def test_group_strokes_change_only_their_channels_inside_the_footprint_and_lead_the_map():
    plan = blurry_to_sharp_plan(channels=16, size=16, steps=4)
    states = replay(plan, (Strokes(channels_per_stroke=4),))
    strokes = [s for s in states if s[0].lead is not None]
    assert len(strokes) > 50
    sizes = [event.channels.numel() for event, _, _ in strokes]
    assert max(sizes) == 4 and min(sizes) >= 1
    for event, before, after in strokes:
        assert int(event.channels[0]) == event.lead == event.map_channel
        assert len(set(event.channels.tolist())) == event.channels.numel()
        changed = after != before
        allowed = torch.zeros_like(changed)
        rows, cols = event.window
        allowed[event.channels, rows, cols] = (event.mask > 0).expand(event.channels.numel(), -1, -1)
        assert not (changed & ~allowed).any()
        target = plan.targets[event.target_index]
        assert ((after - target).abs() <= (before - target).abs() + 1e-6).all()


def test_companions_are_the_channels_that_lack_most_under_the_footprint():
    window_gain = torch.zeros(6, 3, 3)
    window_gain[0] = 0.1  # the lead: least gain here, still first
    window_gain[4, 1, 1] = 5.0
    window_gain[2] = 1.0
    window_gain[5, 0, 0] = 9.0  # outside the mask below
    mask = torch.zeros(3, 3)
    mask[1] = 1.0
    assert stroke_group(window_gain, mask, lead=0, size=3).tolist() == [0, 4, 2]
    # channels without gain under the footprint (not allowed, not motivated, or done) never join
    assert stroke_group(window_gain, mask, lead=0, size=6).tolist() == [0, 4, 2]


def test_groups_stay_inside_the_allowed_channels():
    plan = blurry_to_sharp_plan(channels=16, size=16, steps=3)
    allowed = {1, 5, 6, 9}
    for event, _, _ in replay(plan, (Strokes(channels=tuple(sorted(allowed)), channels_per_stroke=8),)):
        if event.lead is not None:
            assert set(event.channels.tolist()) <= allowed


def test_automatic_groups_on_wide_latents_paint_whole_latent_pixels():
    plan = blurry_to_sharp_plan(channels=16, size=16, steps=3)
    sizes = []
    for event, before, after in replay(plan, (Strokes(),)):
        if event.lead is None:
            continue
        assert int(event.channels[0]) == event.lead
        changed_channels = (after != before).flatten(1).any(dim=1).nonzero().flatten()
        assert set(changed_channels.tolist()) <= set(event.channels.tolist())
        sizes.append(event.channels.numel())
    # most strokes take all 16 channels; fewer only where some channel had nothing left to gain there
    assert max(sizes) == 16
    assert sorted(sizes)[len(sizes) // 2] == 16


def test_stroke_map_shows_each_group_by_its_lead_and_the_painting_ends_exactly():
    plan = blurry_to_sharp_plan(channels=32, size=16, steps=4)
    painting = paint(plan, (Strokes(),), PaintOptions(pacing="strokes", cleanup_frames=0))  # a frame per event
    assert metrics.is_exact(painting, plan)
    painted = painting.channels[painting.channels != NO_CHANNEL]
    assert painted.numel() > 0
    # every stroke (the last frame holds the closing copy of all channels, -2) names one channel
    strokes_only = painting.channels[:-1]
    assert ((strokes_only == NO_CHANNEL) | ((strokes_only >= 0) & (strokes_only < 32))).all()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "4", 5000])
def test_bad_group_sizes_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="channels_per_stroke must be a whole number from 0 to 4096"):
        Strokes(channels_per_stroke=bad)


def test_painter_node_takes_channels_per_stroke_last_and_names_itself_in_errors():
    node = LatentPainterStrokes()
    inputs = LatentPainterStrokes.INPUT_TYPES()
    assert list(inputs["optional"])[-1] == "channels_per_stroke"
    widgets = ("stroke24", "disk", "", 0.1, 0.0, 0.0, 0.0, 1.0, 1, 0)
    (chain,) = node.configure(*widgets, channels_per_stroke=6)
    assert chain[-1].channels_per_stroke == 6
    (chain,) = node.configure(*widgets)  # a workflow saved before the input existed
    assert chain[-1].channels_per_stroke == 0
    with pytest.raises(ValueError, match="^Painter: .*channels_per_stroke"):
        node.configure(*widgets, channels_per_stroke=-2)
