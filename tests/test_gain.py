"""Information gain and brushes (painter/engine/gain.py)."""

import pytest
import torch

from latent_painter.painter.engine.gain import brush_kernel, channel_mask, information_gain


def test_brush_footprints():
    disk = brush_kernel(2, "disk", "cpu")
    assert disk.shape == (5, 5) and disk.sum() == 13
    assert brush_kernel(0, "disk", "cpu").tolist() == [[1.0]]
    assert brush_kernel(1.5, "square", "cpu").sum() == 9
    soft = brush_kernel(4, "soft", "cpu")
    assert soft.shape == (11, 11)
    assert soft[5, 5] == 1 and soft[5, 7] == 1  # full strength in the inner half
    assert 0 < soft[5, 8] < 1 and soft[0, 0] == 0  # falls off toward the rim


def test_gain_is_what_the_canvas_lacks_of_the_target():
    target = torch.tensor([[[1.0, -2.0], [0.0, 3.0]]])
    canvas = torch.tensor([[[1.0, 0.0], [0.5, 1.0]]])
    gain = information_gain(target, canvas)
    assert gain.shape == target.shape and (gain >= 0).all()
    assert gain[0, 0, 0] == 0  # nothing to gain where the canvas already holds the target
    assert gain[0, 1, 1] > gain[0, 1, 0]  # more where more is missing


def test_channel_masks_name_the_allowed_range():
    assert channel_mask((), 4, "cpu").tolist() == [True] * 4
    assert channel_mask((1, 3), 4, "cpu").tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match=r"\[7\].*0\.\.3"):
        channel_mask((7,), 4, "cpu")
