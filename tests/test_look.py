"""The decoder-grid measure (metrics.grid_energy, early_grid_ratio) on real images."""

from __future__ import annotations

import pytest
import torch

from latent_painter.painter.render.writers import to_uint8
from latent_painter.painter.tools import metrics


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real photograph, 128x128, as one IMAGE frame."""
    from skimage import data

    image = torch.from_numpy(data.astronaut()).to(torch.float32) / 255.0
    return torch.nn.functional.avg_pool2d(image.permute(2, 0, 1)[None], 4).permute(0, 2, 3, 1).contiguous()


def block_grid(size: int, period: int = 8, amplitude: float = 0.2) -> torch.Tensor:
    """A frame whose texture is an ``period``-px tile: what a decoder's grid looks like."""
    generator = torch.Generator().manual_seed(0)
    tile = torch.rand(period, period, generator=generator) * amplitude
    reps = size // period
    return tile.repeat(reps, reps)[None, :, :, None].expand(1, size, size, 3).contiguous()


def test_a_pure_8px_tile_is_all_grid():
    assert metrics.grid_energy(block_grid(64)).item() == pytest.approx(1.0, abs=1e-4)


def test_a_photo_and_a_smooth_ramp_have_little_grid(photo):
    ramp = torch.linspace(0, 1, 128).view(1, 128, 1, 1).expand(1, 128, 128, 3).contiguous()
    assert metrics.grid_energy(photo).item() < 0.05
    assert metrics.grid_energy(ramp).item() < 0.05


def test_a_grid_over_a_photo_raises_its_share_with_the_amplitude(photo):
    shares = [metrics.grid_energy(photo + block_grid(128, amplitude=a)).item() for a in (0.0, 0.1, 0.3)]
    assert shares[0] < shares[1] < shares[2]
    assert shares[1] > 2 * shares[0] and shares[2] > 10 * shares[0]


def test_other_periods_are_not_counted(photo):
    # a 5-px tile is texture too, but not the decoder's 8-px grid (no harmonic of 1/5 lies on k/8)
    assert metrics.grid_energy(block_grid(120, period=5)).item() < 0.05


def test_flat_frames_score_zero_and_uint8_reads_as_0_to_1(photo):
    assert metrics.grid_energy(torch.full((2, 32, 32, 3), 0.4)).tolist() == [0.0, 0.0]
    as_bytes = to_uint8(photo)
    assert metrics.grid_energy(as_bytes).item() == pytest.approx(metrics.grid_energy(as_bytes.float() / 255).item())


def test_early_ratio_compares_the_early_frames_with_the_last(photo):
    gridded = photo + block_grid(128, amplitude=0.3)
    # 10 frames: canvas, 3 early gridded frames (the first 40%), then clean ones
    frames = torch.cat([torch.zeros_like(photo), gridded.expand(3, -1, -1, -1), photo.expand(6, -1, -1, -1)])
    energy = metrics.grid_energy(frames)
    ratio = metrics.early_grid_ratio(frames)
    assert ratio == pytest.approx(float(torch.quantile(energy[1:4], 0.9) / energy[-1]))
    assert ratio > 10
    # the canvas (frame 0) is never counted, and clean early frames score 1
    clean = torch.cat([block_grid(128), photo.expand(9, -1, -1, -1)])
    assert metrics.early_grid_ratio(clean) == pytest.approx(1.0)


def test_grid_measures_refuse_what_they_cannot_measure():
    with pytest.raises(ValueError, match="at least 32x32"):
        metrics.grid_energy(torch.rand(1, 16, 16, 3))
    with pytest.raises(ValueError, match="at least 3 frames"):
        metrics.early_grid_ratio(torch.rand(2, 32, 32, 3))
