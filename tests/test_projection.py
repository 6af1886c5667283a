"""The least-squares latent -> RGB projection, on synthetic maps and on real TAESD decodes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latent_painter.painter.engine.projection import explained_variance, fit_rgb_factors, pool_to_latent, project_rgb



def synthetic(channels=6, n=3, h=5, w=7, scale=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, channels, h, w, generator=generator)
    factors = torch.randn(channels, 3, generator=generator)
    bias = torch.randn(3, generator=generator)
    pooled = project_rgb(latents, factors, bias)
    # Any image whose patch means are `pooled` will do; add zero-mean detail inside each patch.
    images = pooled.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    detail = torch.randn(n, h, w, scale, scale, 3, generator=generator)
    detail = detail - detail.mean(dim=(3, 4), keepdim=True)
    images = images + 0.3 * detail.permute(0, 1, 3, 2, 4, 5).reshape(n, h * scale, w * scale, 3)
    return latents, images, factors, bias


def test_fit_recovers_a_known_linear_map():
    latents, images, factors, bias = synthetic()
    fitted, fitted_bias = fit_rgb_factors(latents, images)
    assert fitted.shape == (6, 3) and fitted_bias.shape == (3,)
    assert fitted.dtype == torch.float32
    torch.testing.assert_close(fitted, factors, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fitted_bias, bias, atol=1e-5, rtol=1e-5)
    assert explained_variance(latents, images, fitted, fitted_bias) > 1 - 1e-9


def test_fit_is_least_squares_under_noise():
    latents, images, factors, bias = synthetic(seed=1, n=4, h=9, w=9)
    noisy = images + 0.2 * torch.randn(images.shape, generator=torch.Generator().manual_seed(2))
    fitted, fitted_bias = fit_rgb_factors(latents, noisy)
    # Normal equations of the least-squares problem: residual orthogonal to every regressor.
    residual = pool_to_latent(noisy, 8) - project_rgb(latents, fitted, fitted_bias)
    design = torch.cat([latents.permute(0, 2, 3, 1).reshape(-1, 6), torch.ones(4 * 81, 1)], dim=1)
    assert (design.T @ residual.reshape(-1, 3)).abs().max().item() < 1e-3
    # ... and close to the truth, since the noise averages out over 8x8 patches.
    assert (fitted - factors).abs().max().item() < 0.05


def test_project_rgb_shapes_and_sequences():
    latents, _, factors, bias = synthetic()
    batch = project_rgb(latents, factors, bias)
    assert batch.shape == (3, 5, 7, 3)
    single = project_rgb(latents[1], factors.tolist(), tuple(bias.tolist()))
    torch.testing.assert_close(single, batch[1])
    manual = (latents[0, :, 2, 3][:, None] * factors).sum(0) + bias
    torch.testing.assert_close(batch[0, 2, 3], manual)
    torch.testing.assert_close(project_rgb(latents, factors) + bias, batch)


def test_constant_channel_does_not_break_the_fit():
    latents, images, _, _ = synthetic()
    latents = latents.clone()
    latents[:, 2] = 0.5  # a flat channel is collinear with the bias
    fitted, fitted_bias = fit_rgb_factors(latents, images)
    assert torch.isfinite(fitted).all() and torch.isfinite(fitted_bias).all()


def test_bad_shapes_are_refused():
    latents, images, factors, _ = synthetic()
    with pytest.raises(ValueError, match="one decoded image per latent"):
        fit_rgb_factors(latents, images[:2])
    with pytest.raises(ValueError, match="whole multiple"):
        fit_rgb_factors(latents, images[:, :-1])
    with pytest.raises(ValueError, match=r"IMAGE tensor \[N,H,W,3\]"):
        fit_rgb_factors(latents, images.permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"expected \(6, 3\)"):
        project_rgb(latents, factors[:4])


def test_fit_on_real_taesd_decodes_explains_most_variance(taesd_folder):
    from skimage import data

    from latent_painter.painter.tools.taesd import TinyAutoencoder

    vae = TinyAutoencoder.from_folder(taesd_folder)
    photos = []
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        image = torch.from_numpy(getattr(data, name)()).float().permute(2, 0, 1)[None] / 255.0
        photos.append(F.interpolate(image, size=(128, 128), mode="area").permute(0, 2, 3, 1))
    latents = vae.encode(torch.cat(photos))
    decoded = vae.decode(latents)
    factors, bias = fit_rgb_factors(latents[:3], decoded[:3])
    # Measured: R^2 0.81 on the three fitted photos, 0.70 on the held-out astronaut.
    assert explained_variance(latents[:3], decoded[:3], factors, bias) > 0.7
    assert explained_variance(latents[3:], decoded[3:], factors, bias) > 0.6
    # Not just the mean colour: the preview correlates with the real decode per pixel and channel.
    preview = project_rgb(latents[3:], factors, bias).flatten()
    target = pool_to_latent(decoded[3:], 8).flatten()
    assert torch.corrcoef(torch.stack([preview, target]))[0, 1].item() > 0.8  # measured 0.87


def test_factors_carried_through_a_per_channel_affine_map():
    from latent_painter.painter.engine.projection import factors_through_affine, project_rgb

    generator = torch.Generator().manual_seed(3)
    factors, bias = torch.randn(4, 3, generator=generator), torch.randn(3, generator=generator)
    gain, offset = torch.tensor([0.18, 0.5, 2.0, 1.0]), torch.tensor([0.1, -0.2, 0.0, 0.3])
    latents = torch.randn(2, 4, 5, 6, generator=generator)
    model_space = latents * gain.view(1, 4, 1, 1) + offset.view(1, 4, 1, 1)
    carried, carried_bias = factors_through_affine(factors, bias, gain, offset)
    expected = project_rgb(model_space, factors, bias)
    assert torch.allclose(project_rgb(latents, carried.float(), carried_bias.float()), expected, atol=1e-5)
