"""Events and rendering (painter/engine/timeline.py): what an event writes, frame points, stroke maps."""

from dataclasses import replace

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.engine.timeline import frame_points, make_event, render


def test_stroke_maps_record_where_and_which_channel():
    plan = blurry_to_sharp_plan(channels=4)
    painting = paint(plan, (Strokes(channels=(2,)),), PaintOptions(pacing="strokes", cleanup_frames=1))
    painted = painting.channels[1:-1]
    assert set(painted.unique().tolist()) <= {-1, 2}
    assert (painting.channels[-1] == -2).all()  # the clean-up fade touches every channel
    # coverage only grows, and is zero exactly where no frame has marked anything yet
    assert (painting.coverage[1:] >= painting.coverage[:-1] - 1e-6).all()
    assert torch.equal(painting.coverage[0], torch.zeros(16, 16))
    marked = (painting.strokes[: 30] > 0).cumsum(0) > 0
    assert torch.equal(marked, painting.coverage[:30] > 0)


def test_make_event_applies_and_records_the_change_by_keyword_only():
    targets = torch.ones(1, 2, 4, 4)
    canvas = torch.zeros(2, 4, 4)
    with pytest.raises(TypeError):
        make_event(0, torch.tensor([1]), 1, 1, torch.ones(2, 2), canvas, targets, None)  # noqa - positional refused
    event = make_event(target_index=0, channels=torch.tensor([1]), top=1, left=1, mask=torch.full((2, 2), 0.5),
                       canvas=canvas, targets=targets, rgb=None)
    assert event.change == pytest.approx(2.0)  # four pixels moved by half
    assert canvas[1, 1:3, 1:3].eq(0.5).all() and canvas.sum() == 2.0


def test_frames_may_fall_inside_an_event_and_the_last_completes_it():
    weights = torch.tensor([1.0, 3.0], dtype=torch.float64)
    points = frame_points(weights, torch.tensor([1.0, 2.5, 3.9], dtype=torch.float64))
    assert points[0] == (0, 1.0) and points[1] == (1, 0.5) and points[2] == (1, 1.0)
    targets = torch.ones(1, 1, 2, 2)
    canvas = torch.zeros(1, 2, 2)
    events = [make_event(target_index=0, channels=torch.tensor([0]), top=0, left=0, mask=torch.ones(2, 2),
                         canvas=canvas.clone(), targets=targets, rgb=None)]
    painting = render(targets, canvas, events, [(0, 0.25), (0, 1.0)])
    assert painting.frames[:, 0, 0, 0].tolist() == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="no events"):
        render(targets, canvas, [], [])


def test_a_swept_event_part_done_is_drawn_in_from_its_centre_and_never_a_blend():
    generator = torch.Generator().manual_seed(4)
    targets = torch.randn(1, 3, 9, 9, generator=generator)
    canvas = torch.randn(3, 9, 9, generator=generator)
    disk = torch.zeros(7, 7)
    yy, xx = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")
    disk[(yy - 3) ** 2 + (xx - 3) ** 2 <= 9] = 1
    faded = make_event(target_index=0, channels=torch.tensor([0, 2]), top=1, left=2, mask=disk,
                       canvas=canvas.clone(), targets=targets, rgb=None)
    swept = replace(faded, sweep=True)
    points = [(0, 0.3), (0, 0.7), (0, 1.0)]
    fade = render(targets, canvas, [faded], points).frames
    sweep = render(targets, canvas, [swept], points)
    assert torch.equal(sweep.frames[-1], fade[-1])  # done, both are the same stroke
    window = (slice(None), slice(1, 8), slice(2, 9))  # where the disk's 7x7 window sits
    reached = []
    for frame in sweep.frames[1:3]:
        at_goal = (frame[[0, 2]] == targets[0, [0, 2]]).all(0)
        untouched = (frame == canvas).all(0)
        assert (at_goal | untouched).all()  # every place is before or after, none in between
        assert torch.equal(frame[1], canvas[1]) and untouched[0].all() and untouched[:, :2].all()
        reached.append(at_goal[window[1:]] & (disk > 0))
    assert 0 < reached[0].sum() < reached[1].sum() < (disk > 0).sum()
    assert (reached[1] >= reached[0]).all() and reached[0][3, 3]  # grows from the centre
    moved = lambda frame: float((frame - canvas).abs().sum())
    assert moved(sweep.frames[1]) / moved(sweep.frames[3]) == pytest.approx(0.3, abs=0.12)  # change keeps its pace
    assert (sweep.strokes[1] > 0).sum() == reached[0].sum()  # the stroke map shows what is drawn so far
    blended = ~((fade[1] == targets[0]) | (fade[1] == canvas))
    assert blended.any()  # a faded event part done is a blend of before and after
