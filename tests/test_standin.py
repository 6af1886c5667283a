"""The analytic stand-in diffusion run on real photo latents (taef2 space)."""

from __future__ import annotations

import pytest
import torch

from latent_painter.painter.tools import standin
from latent_painter.painter.tools.demo import load_photos
from latent_painter.painter.engine.plan import LatentFormat, PlanError, load_plan, save_plan
from latent_painter.painter.tools.standin import GaussianPrior, WienerDenoiser, euler_sample, karras_sigmas, photo_plan


STEPS = 30
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


@pytest.fixture(scope="module")
def vae(taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(taesd_folder)


@pytest.fixture(scope="module")
def latents(vae) -> torch.Tensor:
    """Five real photos at 128 px -> [5, 32, 16, 16]; the first is the target, the rest the prior."""
    return vae.encode(torch.cat([load_photos([name], 128) for name in PHOTOS])).clone()


@pytest.fixture(scope="module")
def fmt(latents) -> LatentFormat:
    return standin.latent_format_from(latents)


@pytest.fixture(scope="module")
def plan(latents, fmt):
    return photo_plan(latents[0], latents[1:], steps=STEPS, latent_format=fmt)


def model_space(x, fmt):
    return (x - fmt.shift) * fmt.scale


def band_energy(latents: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Energy of each ``[T,C,H,W]`` latent between two spatial frequencies (cycles per latent pixel)."""
    spectrum = torch.fft.rfft2(latents).abs().square()
    radius = standin._radius(*latents.shape[-2:], latents.device)
    return (spectrum * ((radius > low) & (radius <= high))).sum(dim=(-3, -2, -1))


def test_plan_shape_sigmas_and_format(plan, latents, fmt):
    assert plan.originals.shape == (STEPS, 32, 16, 16)
    assert plan.final.shape == (32, 16, 16)
    assert plan.sigmas.shape == (STEPS,)
    assert plan.sigmas[0].item() == pytest.approx(14.6) and plan.sigmas[-1].item() == pytest.approx(0.03)
    assert (plan.sigmas[1:] < plan.sigmas[:-1]).all()
    assert plan.latent_format is fmt and plan.latent_format.name == "taef2" and plan.latent_format.channels == 32
    # Model space has about unit spread, as the sampler's sigmas assume.
    z = model_space(latents, fmt)
    assert abs(z.mean().item()) < 0.01 and z.std().item() == pytest.approx(1.0, abs=0.01)


def test_final_is_the_last_original_bit_for_bit(plan):
    assert torch.equal(plan.final, plan.originals[-1])
    assert plan.targets.shape[0] == STEPS  # so the plan adds no extra clean-up schedule


def test_final_is_close_to_the_target_photo(plan, latents, vae):
    target = latents[0]
    # Measured 0.048: 30 Euler steps plus the residual blur at sigma_min.
    relative = ((plan.final - target).norm() / (target - target.mean()).norm()).item()
    assert relative < 0.08
    first = ((plan.originals[0] - target).norm() / (target - target.mean()).norm()).item()
    assert first > 0.8  # the run really starts far from the photo
    pictures = vae.decode(torch.stack([plan.originals[0], plan.final, target]))
    psnr = 10 * torch.log10(1.0 / (pictures[1] - pictures[2]).square().mean())
    assert psnr.item() > 30  # measured 36 dB
    # Decoded, the first original is a blur and the last is as sharp as the photo's own decode.
    def sharpness(image):
        return (image[1:-1, 1:-1] * 4 - image[2:, 1:-1] - image[:-2, 1:-1] - image[1:-1, 2:] - image[1:-1, :-2]).abs().mean()

    assert sharpness(pictures[0]) < 0.8 * sharpness(pictures[2])
    assert sharpness(pictures[1]) == pytest.approx(sharpness(pictures[2]).item(), rel=0.1)


def test_originals_are_the_photo_low_passed_by_the_wiener_gain(plan, latents, fmt):
    z = model_space(latents, fmt)
    prior = GaussianPrior.fit(z[1:])
    spectrum = prior.spectrum(16, 16)
    assert (spectrum > 0).all()
    exact = WienerDenoiser(prior.mean, spectrum)
    for step in (0, 10, 20, STEPS - 1):
        sigma = plan.sigmas[step].item()
        analytic = exact._filter(z[0], torch.sqrt(spectrum / (spectrum + sigma**2))) / fmt.scale + fmt.shift
        error = (plan.originals[step] - analytic).norm() / (analytic - analytic.mean()).norm()
        assert error.item() < 0.06, (step, error.item())  # Euler's discretisation error only


def test_originals_sharpen_step_by_step(plan):
    centred = plan.originals - plan.originals.mean(dim=(-2, -1), keepdim=True)
    high = band_energy(centred, 0.25, 1.0)
    low = band_energy(centred, 0.0, 0.1)
    assert (high[1:] >= high[:-1]).all(), high  # every step adds detail, none removes it
    assert (high[0] / high[-1]).item() < 0.01  # measured 0.003
    # Coarse structure arrives earlier than fine detail.
    middle = STEPS // 2
    assert (low[middle] / low[-1]).item() > 2 * (high[middle] / high[-1]).item()  # measured 0.78 vs 0.30


def test_change_is_front_loaded(plan, latents):
    change = (plan.originals[1:] - plan.originals[:-1]).flatten(1).norm(dim=1)
    share = torch.cumsum(change, 0) / change.sum()
    steps = change.numel()
    # Measured: 59% of the change in the first half, 6% in the last quarter, like the
    # x0-preview stall of a real run (the animation the painter exists to fix).
    assert share[steps // 2 - 1].item() > 0.55
    assert 1 - share[(3 * steps) // 4 - 1].item() < 0.12
    # The stall curve: most of the distance to the final latent is gone by two thirds of the run.
    distance = (plan.originals - plan.final).flatten(1).norm(dim=1)
    assert (distance[(2 * STEPS) // 3] / distance[0]).item() < 0.15


def test_deterministic_and_seeded_noise(plan, latents, fmt):
    again = photo_plan(latents[0], latents[1:], steps=STEPS, latent_format=fmt)
    assert torch.equal(again.originals, plan.originals) and torch.equal(again.sigmas, plan.sigmas)
    noisy = photo_plan(latents[0], latents[1:], steps=STEPS, latent_format=fmt, noise=0.05, seed=7)
    repeat = photo_plan(latents[0], latents[1:], steps=STEPS, latent_format=fmt, noise=0.05, seed=7)
    assert torch.equal(noisy.originals, repeat.originals)
    other = photo_plan(latents[0], latents[1:], steps=STEPS, latent_format=fmt, noise=0.05, seed=8)
    assert not torch.equal(noisy.final, other.final)
    assert not torch.equal(noisy.final, plan.final)
    assert torch.equal(noisy.final, noisy.originals[-1])


def test_default_format_other_sizes_and_round_trip(tmp_path, latents, vae):
    from latent_painter.painter.engine.projection import explained_variance

    images = vae.decode(latents)
    fmt = standin.latent_format_from(latents, images)
    assert fmt.channels == 32 and len(fmt.rgb_factors) == 32 and len(fmt.rgb_bias) == 3
    assert explained_variance(latents, images, fmt.rgb_factors, fmt.rgb_bias) > 0.7
    # The prior may come from latents of another size (frequencies are per latent pixel), and
    # the default format is derived from it.
    plan = photo_plan(latents[0, :, :12, :10], latents[1:], steps=8)
    assert plan.originals.shape == (8, 32, 12, 10)
    assert plan.latent_format.scale == standin.latent_format_from(latents[1:]).scale
    assert torch.equal(plan.final, plan.originals[-1])
    path = save_plan(plan, tmp_path / "standin.safetensors")
    loaded = load_plan(path)
    assert torch.equal(loaded.originals, plan.originals) and loaded.latent_format == plan.latent_format


def test_karras_schedule_and_euler_loop():
    sigmas = karras_sigmas(5, 10.0, 0.1, 7.0)
    ramp = torch.linspace(0, 1, 5, dtype=torch.float64)
    expected = (10.0 ** (1 / 7) + ramp * (0.1 ** (1 / 7) - 10.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(sigmas[:-1], expected.float())
    assert sigmas[-1].item() == 0.0 and sigmas.dtype == torch.float32
    # A denoiser that always predicts c: every original is c, and the loop ends exactly on c.
    target = torch.full((2, 3, 3), 0.7)
    final, originals = euler_sample(lambda x, sigma: target, torch.randn(2, 3, 3), sigmas)
    assert len(originals) == 5 and torch.equal(final, target)


def test_bad_inputs_are_refused(latents):
    with pytest.raises(PlanError, match="prior latents have 16 channels"):
        photo_plan(latents[0], latents[1:, :16])
    with pytest.raises(PlanError, match="steps must be a whole number from 1 to 10000"):
        photo_plan(latents[0], latents[1:], steps=0)
    with pytest.raises(PlanError, match="noise must be"):
        photo_plan(latents[0], latents[1:], noise=-1.0)
    with pytest.raises(PlanError, match="sigma_max > sigma_min"):
        photo_plan(latents[0], latents[1:], sigma_max=0.01)
    with pytest.raises(PlanError, match="NaN/inf"):
        photo_plan(latents[0] * float("nan"), latents[1:])
    with pytest.raises(PlanError, match="4 dimensions"):
        photo_plan(latents[0], latents[1])


def test_a_reencoded_plan_is_the_pixel_run_encoded_and_decodes_without_the_grid(vae, latents, fmt, plan):
    from latent_painter.painter.tools.metrics import grid_energy, sharpness

    photos = torch.cat([load_photos([name], 128) for name in PHOTOS])
    reencoded = standin.reencoded_photo_plan(photos, 0, vae.encode, steps=12, latent_format=fmt)
    assert reencoded.targets.shape == (12, 32, 16, 16) and reencoded.latent_format == fmt
    assert torch.equal(reencoded.final, reencoded.targets[-1])
    pixels = photos.permute(0, 3, 1, 2)
    run = photo_plan(pixels[0], pixels, steps=12)
    assert torch.equal(reencoded.final, vae.encode(photos[:1])[0])  # ends on the photo itself, bit for bit
    first = run.targets[0].clamp(0, 1).permute(1, 2, 0)[None].contiguous()
    # the pixel run's first prediction encoded (and the small difference between its last one and the photo)
    assert (reencoded.targets[0] - vae.encode(first)[0]).abs().mean() < 0.05 * reencoded.final.abs().mean()
    decoded = vae.decode(reencoded.targets)
    assert sharpness(decoded[:1]) < 0.5 * sharpness(decoded[-1:])  # blurry to sharp
    # the early originals are images encoded, so they decode without the decoder's grid, unlike a
    # latent-space stand-in's (a Wiener blur of a latent, which no encoder makes)
    latent_space_early = grid_energy(vae.decode(plan.targets[:4])).mean()
    assert grid_energy(decoded[:4]).mean() < 0.5 * latent_space_early


def test_a_reencoded_plan_refuses_what_is_not_a_batch_of_images(vae):
    with pytest.raises(PlanError, match=r"photos must be \[N,H,W,3\] images"):
        standin.reencoded_photo_plan(torch.rand(2, 3, 64, 64), 0, vae.encode)
    with pytest.raises(PlanError, match="photo index 2 is out of range for 2 photos"):
        standin.reencoded_photo_plan(torch.rand(2, 64, 64, 3), 2, vae.encode)
