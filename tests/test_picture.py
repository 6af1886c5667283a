"""Plans that end on a picture the user has (engine/picture.py): a rough-to-fine plan from an image
with no model, and any plan landed exactly on a given latent. Real photos, the real taef2 pair."""

from __future__ import annotations

import pytest
import torch

from latent_painter.painter.engine.picture import land_on, land_plan, latent_picture_plan, picture_plan
from latent_painter.painter.engine.plan import PlanError, make_plan
from latent_painter.painter.tools.demo import load_photos
from latent_painter.painter.tools.metrics import grid_energy, sharpness

STEPS = 12


@pytest.fixture(scope="module")
def vae(taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(taesd_folder)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_photos(["coffee"], 128)[0]


def pixel_space(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI's 'pixel_space' VAE: the latent is the image itself, on -1..1, 3 channels."""
    return images.permute(0, 3, 1, 2) * 2 - 1


def test_a_picture_plan_goes_rough_to_fine_and_ends_on_the_encoded_picture(vae, photo):
    calls = []
    plan = picture_plan(photo, vae.encode, steps=STEPS, progress=lambda done, total: calls.append((done, total)))
    assert plan.steps == STEPS and plan.targets.shape == (STEPS, 32, 16, 16)
    assert torch.equal(plan.final, vae.encode(photo[None])[0])  # what VAE Encode gives, bit for bit
    assert torch.equal(plan.targets[-1], plan.final)
    assert calls == [(n, STEPS + 1) for n in range(1, STEPS + 2)]
    decoded = vae.decode(plan.targets)
    values = sharpness(decoded)
    assert values[0] < 0.3 * values[-1]  # colour blobs first
    assert values[STEPS // 2] < values[-1]
    # every step is an image encoded, so the early ones decode without the decoder's grid
    assert grid_energy(decoded[: STEPS // 3]).max() < 1.5 * grid_energy(decoded[-1:]).item()


def test_roughness_sets_how_rough_the_start_is(vae, photo):
    rough = picture_plan(photo, vae.encode, steps=6, roughness=1.0)
    soft = picture_plan(photo, vae.encode, steps=6, roughness=0.4)
    first = sharpness(vae.decode(torch.stack([rough.targets[0], soft.targets[0], soft.final])))
    assert first[0] < first[1] < first[2]
    assert torch.equal(rough.final, soft.final)
    with pytest.raises(ValueError, match="roughness must be a number above 0 and at most 1"):
        picture_plan(photo, vae.encode, roughness=0.0)


def test_a_picture_plan_in_pixel_space_and_from_a_latent(photo):
    plan = picture_plan(photo, pixel_space, steps=STEPS)
    assert torch.equal(plan.final, pixel_space(photo[None])[0]) and plan.channels == 3
    values = sharpness((plan.targets.permute(0, 2, 3, 1) + 1) / 2)
    assert values[0] < 0.3 * values[-1]
    latent = pixel_space(photo[None])[0]
    from_latent = latent_picture_plan(latent, steps=STEPS)
    assert torch.equal(from_latent.final, latent) and torch.equal(from_latent.targets[-1], latent)
    assert sharpness((from_latent.targets[:1].permute(0, 2, 3, 1) + 1) / 2)[0] < 0.3 * values[-1]


def test_a_given_final_latent_ends_the_plan_bit_for_bit(vae, photo):
    end = vae.encode(photo[None])[0] + 0.25  # any latent of that shape: where the painting must end
    plan = picture_plan(photo, vae.encode, steps=4, final=end)
    assert torch.equal(plan.final, end) and torch.equal(plan.targets[-1], end)


def test_bad_pictures_are_refused(vae, photo):
    with pytest.raises(PlanError, match="one flat colour"):
        picture_plan(torch.full((64, 64, 3), 0.5), vae.encode)
    with pytest.raises(PlanError, match=r"RGB image \[H,W,3\]"):
        picture_plan(photo.permute(2, 0, 1), vae.encode)
    with pytest.raises(PlanError, match="steps must be a whole number from 1"):
        picture_plan(photo, vae.encode, steps=0)
    with pytest.raises(PlanError, match="not one latent"):
        picture_plan(photo, lambda images: images[0], steps=2)


def test_landing_ends_exactly_and_fades_the_difference_in_coarse_to_fine():
    generator = torch.Generator().manual_seed(3)
    end = torch.randn(4, 32, 32, generator=generator)
    # a plan that converges: big moves first, then none for its last three steps
    base = torch.randn(4, 32, 32, generator=generator)
    targets = torch.stack([base * (1 - s) for s in (0.0, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0)])
    landed = land_on(targets, end)
    assert torch.equal(landed[-1], end)
    added = landed - targets
    # where the plan has stopped moving it is already at the end: no change left for the last frames
    torch.testing.assert_close(landed[3:], end.expand(4, -1, -1, -1), atol=1e-5, rtol=0)
    # broad first: the share of the difference's fine detail grows step by step
    def fine_share(x):
        spectrum = torch.fft.rfft2(x).abs() ** 2
        return (spectrum[..., 4:, 4:].sum() / spectrum.sum()).item()
    shares = [fine_share(added[i]) for i in range(4)]
    assert shares == sorted(shares) and shares[0] < 0.1 * shares[3]
    # the mean colour shift arrives at once, as a real run's colour blobs do
    torch.testing.assert_close(added[0].mean((1, 2)), (end - targets[-1]).mean((1, 2)), atol=1e-5, rtol=0)


def test_landing_a_plan_keeps_its_sigmas_and_refuses_another_size():
    originals = torch.randn(5, 4, 8, 8)
    plan = make_plan(originals, originals[-1] + 1.0, torch.linspace(10, 0.1, 5))  # final not the last original
    end = torch.randn(4, 8, 8)
    landed = land_plan(plan, end)
    assert landed.steps == 6 and landed.sigmas.tolist()[-1] == 0.0 and torch.equal(landed.final, end)
    with pytest.raises(PlanError, match="end latent is 4x16x16 but the plan is 4x8x8"):
        land_plan(plan, torch.randn(4, 16, 16))
