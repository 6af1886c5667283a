"""Pacing, active range, sharpness/crispness, exactness and the lerp/slerp baselines."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from latent_painter.painter.render.writers import to_uint8
from latent_painter.painter.tools import metrics
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.engine.timeline import Painting


def constant_frames(*levels: float, size: int = 4) -> torch.Tensor:
    return torch.tensor(levels, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, size, size, 3).contiguous()


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real photograph, 128x128, as one IMAGE frame."""
    from skimage import data

    image = torch.from_numpy(data.astronaut()).to(torch.float32) / 255.0
    return torch.nn.functional.avg_pool2d(image.permute(2, 0, 1)[None], 4).permute(0, 2, 3, 1).contiguous()


def blur(images: torch.Tensor, passes: int = 3) -> torch.Tensor:
    x = images.permute(0, 3, 1, 2)
    for _ in range(passes):
        x = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x.permute(0, 2, 3, 1).contiguous()


# --- frame changes and pacing -------------------------------------------------------------


def test_frame_changes_hand_computed():
    images = constant_frames(0.0, 0.5, 0.25, 0.25)
    images[3, 0, 0] = 1.0  # one pixel of 16 moves by 0.75 in all channels
    changes = metrics.frame_changes(images)
    assert torch.allclose(changes, torch.tensor([0.5, 0.25, 0.75 / 16]))


def test_frame_changes_reads_uint8_as_0_to_1(photo):
    frames_ = torch.cat([photo, blur(photo)])
    as_bytes = to_uint8(frames_)
    assert torch.allclose(metrics.frame_changes(as_bytes), metrics.frame_changes(as_bytes.float() / 255))


def test_frame_changes_chunks_agree_with_direct():
    images = torch.rand(40, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    direct = (images[1:] - images[:-1]).abs().mean(dim=(1, 2, 3))
    assert torch.allclose(metrics.frame_changes(images), direct)


def test_even_pace_is_zero(photo):
    steps = torch.linspace(0, 1, 21).view(-1, 1, 1, 1)
    images = steps * photo + (1 - steps) * blur(photo, 6)
    assert metrics.pacing(images) < 1e-3


def test_all_change_in_first_frame_is_the_worst_pace():
    n = 12
    images = constant_frames(0.0, *([0.8] * (n - 1)))
    assert metrics.pacing(images) == pytest.approx(1 - 1 / (n - 1))


def test_pacing_hand_computed():
    # changes 0.3, 0.1, 0, 0: done 0.75, 1, 1, 1 against elapsed 0.25, 0.5, 0.75, 1 -> max gap 0.5
    assert metrics.pacing(constant_frames(0.0, 0.3, 0.4, 0.4, 0.4)) == pytest.approx(0.5)
    # changes 0, 0, 1: done 0, 0, 1 against 1/3, 2/3, 1 -> 2/3
    assert metrics.pacing(constant_frames(0.2, 0.2, 0.2, 0.7)) == pytest.approx(2 / 3)


def test_pacing_of_still_or_single_frames_is_zero():
    assert metrics.pacing(constant_frames(0.3, 0.3, 0.3)) == 0.0
    assert metrics.pacing(constant_frames(0.3)) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1e3, allow_nan=False), min_size=1, max_size=50), st.floats(1e-3, 1e3))
def test_pacing_bounds_and_scale_invariance(changes, scale):
    d = torch.tensor(changes, dtype=torch.float32)
    value = metrics.pacing_from_changes(d)
    assert 0.0 <= value <= 1 - 1 / len(changes) + 1e-6
    if float(d.sum()) > 1e-3:
        assert metrics.pacing_from_changes(d * scale) == pytest.approx(value, abs=1e-5)


def test_active_range_drops_holds_only():
    images = constant_frames(0.1, 0.1, 0.1, 0.4, 0.4, 0.6, 0.9, 0.9, 0.9)
    start, stop = metrics.active_range(images)
    assert (start, stop) == (2, 7)  # the pause 3->4 in the middle stays
    expected = metrics.pacing_from_changes(torch.tensor([0.3, 0.0, 0.2, 0.3]))
    assert metrics.pacing(images[start:stop]) == pytest.approx(expected)
    assert metrics.active_range(constant_frames(0.5, 0.5, 0.5)) == (0, 1)
    # A tolerance treats tiny flicker as a hold.
    noisy = constant_frames(0.1, 0.1 + 1e-4, 0.5, 0.5 - 1e-4)
    assert metrics.active_range(noisy) == (0, 4)
    assert metrics.active_range(noisy, tol=1e-3) == (1, 3)


# --- sharpness and crispness ---------------------------------------------------------------


def test_sharpness_hand_computed():
    stripes = torch.zeros(1, 6, 6, 3)
    stripes[:, :, ::2] = 1.0  # vertical stripes: |Laplacian| = 2 on every interior pixel
    assert metrics.sharpness(stripes).item() == pytest.approx(2.0, rel=1e-5)
    assert metrics.sharpness(constant_frames(0.7)).item() == 0.0
    with pytest.raises(ValueError, match="3x3"):
        metrics.sharpness(torch.zeros(1, 2, 8, 3))


def test_sharpness_falls_with_blur(photo):
    values = metrics.sharpness(torch.cat([photo, blur(photo, 1), blur(photo, 4)]))
    assert values[0] > values[1] > values[2] > 0


def test_crispness_of_a_blurred_middle(photo):
    sequence = torch.cat([photo, blur(photo, 2), photo])
    ratio, lowest = metrics.crispness(sequence)
    assert ratio[0] == 1.0 and ratio[2] == 1.0
    assert 0.0 < ratio[1] < 1.0
    assert lowest == pytest.approx(float(ratio[1]))


def test_crispness_of_a_contrast_ramp_is_one(photo):
    # Sharpness is linear in contrast, so a contrast ramp tracks the interpolated reference exactly.
    contrast = torch.linspace(1.0, 0.4, 6).view(-1, 1, 1, 1)
    ratio, lowest = metrics.crispness(photo * contrast)
    assert torch.allclose(ratio, torch.ones(6), atol=1e-4)
    assert lowest == pytest.approx(1.0, abs=1e-4)


def test_crispness_edge_cases():
    ratio, lowest = metrics.crispness_from_sharpness(torch.tensor([0.0, 0.0, 0.0]))
    assert ratio.tolist() == [1.0, 1.0, 1.0] and lowest == 1.0
    assert metrics.crispness_from_sharpness(torch.tensor([2.0, 1.0]))[1] == 1.0
    ratio, lowest = metrics.crispness_from_sharpness(torch.tensor([2.0, 1.0, 4.0, 1.0]))
    # references 2, 5/3, 4/3, 1
    assert torch.allclose(ratio, torch.tensor([1.0, 0.6, 3.0, 1.0]))
    assert lowest == pytest.approx(0.6)


# --- plan baselines and exactness ----------------------------------------------------------


def test_x0_preview_is_one_frame_per_target():
    originals = torch.randn(5, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    plan = make_plan(originals)
    assert torch.equal(metrics.x0_preview_latents(plan), originals)
    other = make_plan(originals, final=originals[-1] + 1)
    preview = metrics.x0_preview_latents(other)
    assert preview.shape == (6, 4, 3, 3) and torch.equal(preview[-1], other.final)


def test_is_exact_bit_for_bit():
    final = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(0))
    final[0, 0, 0] = 0.0
    frames_ = torch.stack([torch.zeros_like(final), final.clone()])
    assert metrics.is_exact(frames_, final)
    assert metrics.is_exact(frames_, final[None])
    assert metrics.is_exact(frames_, make_plan(final[None]))
    negative_zero = frames_.clone()
    negative_zero[-1, 0, 0, 0] = -0.0
    assert torch.equal(negative_zero[-1], final)  # equal as numbers...
    assert not metrics.is_exact(negative_zero, final)  # ...but not bit for bit
    one_ulp = frames_.clone()
    one_ulp[-1, 1, 1, 1] = torch.nextafter(final[1, 1, 1], torch.tensor(math.inf))
    assert not metrics.is_exact(one_ulp, final)
    assert not metrics.is_exact(frames_.double(), final)
    maps = torch.zeros(2, 3, 3)
    painting = Painting(frames_, maps, maps.to(torch.int16), maps, torch.zeros(2, dtype=torch.int64))
    assert metrics.is_exact(painting, final)
    with pytest.raises(ValueError, match="shape"):
        metrics.is_exact(frames_, final[:2])


# --- lerp / slerp --------------------------------------------------------------------------



def test_ghosting_scores_a_cross_fade_half_and_a_collage_of_the_two_ends_none():
    generator = torch.Generator().manual_seed(8)
    first, last = torch.rand(2, 1, 32, 32, 3, generator=generator)
    fade = torch.cat([torch.lerp(first, last, t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)])
    assert metrics.ghosting(fade).tolist() == pytest.approx([0.0, 0.25, 0.5, 0.25, 0.0], abs=1e-5)
    collage = first.clone()
    collage[:, :16] = last[:, :16]  # whole 8x8 blocks of the last frame painted over the first
    assert metrics.ghosting(torch.cat([first, collage, last])).tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    still = torch.cat([first, first * 1.01])  # ends that differ nowhere by the floor: nothing to ghost
    assert metrics.ghosting(still).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="multiples of 8"):
        metrics.ghosting(torch.rand(2, 30, 32, 3))
