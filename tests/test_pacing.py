"""Pacing methods (painter/engine/pacing.py): the registry, frame counts, even change, decoder calibration."""

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine import pacing
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.strokes import Strokes


@pytest.mark.parametrize("frames", [2, 3, 17, 250])
@pytest.mark.parametrize("pacing", ["strokes", "change"])
def test_frame_count_is_as_requested(frames, pacing):
    plan = blurry_to_sharp_plan()
    painting = paint(plan, (Strokes(),), PaintOptions(frames=frames, pacing=pacing))
    assert len(painting) == frames
    assert painting.strokes.shape == (frames, 16, 16)
    assert painting.coverage.shape == (frames, 16, 16)
    assert torch.equal(painting.frames[-1], plan.final)


def test_change_pacing_spreads_visible_change_evenly():
    plan = blurry_to_sharp_plan(channels=4, size=24, steps=8)
    even = paint(plan, (Strokes(),), PaintOptions(frames=60, pacing="change"))
    counted = paint(plan, (Strokes(),), PaintOptions(frames=60, pacing="strokes"))

    def spread(frames):
        change = (frames[1:] - frames[:-1]).abs().sum((1, 2, 3))
        return float(change.std() / change.mean())

    assert spread(even.frames) < 0.5 * spread(counted.frames)


def test_decoder_calibration_evens_out_what_a_nonlinear_decoder_shows():
    plan = blurry_to_sharp_plan(channels=4, size=16, steps=8)

    def decode(latents):  # saturating like a real decoder: changes near zero show most
        return torch.tanh(3 * latents[:, :3]).permute(0, 2, 3, 1)

    def unevenness(painting):
        shown = (decode(painting.frames[1:]) - decode(painting.frames[:-1])).abs().mean((1, 2, 3))
        share = shown.cumsum(0) / shown.sum()
        elapsed = torch.arange(1, len(shown) + 1) / len(shown)
        return float((share - elapsed).abs().max())

    options = PaintOptions(frames=80, pacing="change")
    estimated = paint(plan, (Strokes(),), options)
    calibrated = paint(plan, (Strokes(),), options, decode=decode)
    assert len(calibrated) == 80 and torch.equal(calibrated.frames[-1], plan.final)
    assert unevenness(calibrated) < 0.6 * unevenness(estimated)


def test_the_registry_names_each_method_and_refuses_unknown_ones():
    assert list(pacing.PACINGS) == ["strokes", "change"]
    assert pacing.PACINGS["change"].decodes and not pacing.PACINGS["strokes"].decodes
    with pytest.raises(ValueError, match="pacing 'fast' is unknown; use one of strokes, change"):
        pacing.pacing_method("fast")


def test_weights_fall_back_to_frame_weights_without_visible_change():
    from latent_painter.painter.engine.timeline import Event

    still = [Event(0, torch.tensor([0]), 0, 0, torch.ones(1, 1), change=0.0, weight=w) for w in (1.0, 0.5)]
    assert pacing.pacing_weights(still, by_change=True).tolist() == [1.0, 0.5]
    moving = [Event(0, torch.tensor([0]), 0, 0, torch.ones(1, 1), change=c) for c in (2.0, 6.0)]
    assert pacing.pacing_weights(moving, by_change=True).tolist() == [2.0, 6.0]
    assert pacing.even_goals(torch.tensor([2.0, 6.0], dtype=torch.float64), 5).tolist() == [2.0, 4.0, 6.0, 8.0]


def test_calibration_probes_stay_between_8_and_64():
    assert [pacing.calibration_probes(n) for n in (2, 40, 100, 1000)] == [8, 10, 25, 64]
