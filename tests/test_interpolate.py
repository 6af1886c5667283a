"""Latents between two latents (painter/engine/interpolate.py): lerp, slerp, one endpoint and one degenerate rule."""

import math

import pytest
import torch

from latent_painter.painter.tools import metrics
from latent_painter.painter.engine.interpolate import interpolate


def latent_pair(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(4, 8, 8, generator=generator), torch.randn(4, 8, 8, generator=generator)


def test_lerp_latents():
    a, b = latent_pair()
    out = metrics.lerp_latents(a, b, 5)
    assert out.shape == (5, 4, 8, 8)
    assert torch.equal(out[0], a) and torch.equal(out[-1], b)
    assert torch.allclose(out[2], (a + b) / 2, atol=1e-6)
    assert torch.allclose(out[1:] - out[:-1], ((b - a) / 4).expand(4, -1, -1, -1), atol=1e-5)


def test_slerp_keeps_the_norm_of_equal_norm_latents():
    a, b = latent_pair()
    b = b * (a.norm() / b.norm())
    out = metrics.slerp_latents(a[None], b[None], 9)
    assert torch.equal(out[0], a) and torch.equal(out[-1], b)
    norms = out.flatten(1).norm(dim=1)
    assert torch.allclose(norms, a.norm().expand(9), rtol=1e-5)
    # lerp, by contrast, cuts the corner: the middle latent is shorter.
    assert metrics.lerp_latents(a, b, 9)[4].norm() < 0.9 * a.norm()


def test_slerp_of_orthogonal_unit_vectors():
    a = torch.zeros(2, 1, 1)
    b = torch.zeros(2, 1, 1)
    a[0] = 1.0
    b[1] = 1.0
    middle = metrics.slerp_latents(a, b, 3)[1].flatten()
    assert torch.allclose(middle, torch.tensor([1.0, 1.0]) / math.sqrt(2), atol=1e-6)
    path = metrics.slerp_latents(a, b, 7).flatten(1)
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles, torch.linspace(0, math.pi / 2, 7), atol=1e-5)  # constant angular speed


def test_slerp_handles_parallel_antiparallel_and_zero():
    a, _ = latent_pair()
    for b in (2 * a, -a, torch.zeros_like(a)):
        out = metrics.slerp_latents(a, b, 5)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, metrics.lerp_latents(a, b, 5))
        assert torch.equal(out[-1], b)


def test_interpolation_refuses_bad_input():
    a, b = latent_pair()
    with pytest.raises(ValueError, match="interpolated frames must be a whole number from 2"):
        metrics.slerp_latents(a, b, 1)
    with pytest.raises(ValueError, match="shape"):
        metrics.lerp_latents(a, b[:2], 4)


def test_slerp_keeps_norm_better_than_lerp():
    a, b = torch.randn(4, 8, 8), torch.randn(4, 8, 8)
    b = b / b.norm() * a.norm()
    middle = torch.tensor([0.5])
    assert interpolate(a, b, middle, "slerp")[0].norm() == pytest.approx(float(a.norm()), rel=1e-4)
    assert interpolate(a, b, middle, "lerp")[0].norm() < 0.9 * a.norm()
    assert torch.allclose(interpolate(a, a, middle, "slerp")[0], a)


@pytest.mark.parametrize("how", ["lerp", "slerp"])
def test_shares_0_and_1_give_the_endpoints_bit_for_bit(how):
    a, b = latent_pair(3)
    out = interpolate(a, b, torch.tensor([0.0, 0.3, 1.0]), how)
    assert torch.equal(out[0], a) and torch.equal(out[-1], b)
    with pytest.raises(ValueError, match="interpolation 'cubic' is unknown"):
        interpolate(a, b, torch.tensor([0.5]), "cubic")
