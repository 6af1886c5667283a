"""The painter's choices (painter/engine/decisions.py): ties go to the lowest index on every CPU, and a
recorded choice carries its margin to the runner-up."""

import math

import pytest
import torch

from latent_painter.painter.engine import decisions
from latent_painter.painter.engine.paint import PaintOptions, generate_events
from latent_painter.painter.engine.strokes import Strokes


def test_best_breaks_ties_towards_the_lowest_index_and_records_the_margin():
    scores = torch.tensor([[1.0, 4.0], [4.0, 2.0]])
    with decisions.recorded() as choices:
        assert decisions.best(scores, "place") == 1
        assert decisions.best(torch.tensor([2.0, 1.5]), "channel") == 0
    assert [c.kind for c in choices] == ["place", "channel"]
    assert choices[0].chosen == (1,) and choices[0].margin == 0.0  # tied with index 2
    assert choices[1].score == 2.0 and math.isclose(choices[1].margin, 0.25)


def test_ranked_records_the_set_and_the_gap_to_the_first_left_out():
    with decisions.recorded() as choices:
        order = decisions.ranked(torch.tensor([0.5, 3.0, 1.0, 3.0]), 3, "group")
        everything = decisions.ranked(torch.tensor([1.0, 2.0]), 2, "group")
    assert order.tolist() == [1, 3, 2] and everything.tolist() == [1, 0]
    assert len(choices) == 1  # choosing every option is no choice
    assert choices[0].chosen == (1, 2, 3) and math.isclose(choices[0].margin, 0.5)


def test_locate_records_the_distance_to_the_nearest_boundary():
    boundaries = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    with decisions.recorded() as choices:
        indices = decisions.locate(boundaries, torch.tensor([0.5, 2.0, 3.9], dtype=torch.float64), "frame")
    assert indices.tolist() == [0, 1, 2]
    assert [c.margin for c in choices] == pytest.approx([0.5 / 4, 0.0, 0.1 / 4])


def test_above_records_how_many_passed_and_the_closest_value():
    with decisions.recorded() as choices:
        passed = decisions.above(torch.tensor([0.1, 0.9, 0.45]), 0.5, "motivated places")
    assert passed.tolist() == [False, True, False]
    assert choices[0].chosen == (1,) and math.isclose(choices[0].margin, 0.1, rel_tol=1e-6)


def test_nothing_is_recorded_outside_a_recording():
    with decisions.recorded() as choices:
        pass
    decisions.best(torch.tensor([1.0, 2.0]), "channel")
    assert choices == []


def test_tied_channels_and_places_paint_the_lowest_index_first():
    """Four identical channels and a flat residual: every channel and every inner place ties, the same
    on every CPU (the same numbers summed the same way), and the lowest index wins both."""
    targets = torch.full((1, 4, 12, 12), 0.5)
    events = generate_events(targets, torch.zeros(4, 12, 12), (Strokes(radii=(2,), move_cost=0.0),), PaintOptions())
    first = events[0]
    assert first.channels.tolist() == [0]
    assert (first.top, first.left) == (0, 0)  # the disk centred at (2, 2), the first place it fits whole
