"""Plan From Image as a node: a picture and a VAE (or a latent) in, a rough-to-fine plan out, with
progress, Cancel and clear errors. The VAE is the real taef2 pair; the host is faked only for the
progress bar (nodes_support.py)."""

from __future__ import annotations

import pytest
import torch

from nodes_support import Interrupted, Progress, results

from latent_painter.nodes import host
from latent_painter.nodes.plans import LatentPainterPlanFromImage
from latent_painter.painter.tools.demo import load_photos

NODE = "LatentPainterPlanFromImage"


@pytest.fixture(scope="module")
def vae(taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(taesd_folder)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return load_photos(["chelsea"], 96)


def test_image_and_vae_make_a_plan_that_ends_on_the_encoded_image(vae, image, progress):
    (plan,) = results(NODE, steps=8, roughness=1.0, image=image, vae=vae)
    assert plan.steps == 8 and torch.equal(plan.final, vae.encode(image)[0])
    assert progress.totals == [9] and progress.reports[-1] == (9, 9)
    # a latent given as well is where the plan ends, bit for bit; without an image it is decoded for the run
    latent = vae.encode(image) * 1.0
    (from_latent,) = results(NODE, steps=8, roughness=1.0, vae=vae, latent={"samples": latent})
    assert torch.equal(from_latent.final, latent[0])
    (no_vae,) = results(NODE, steps=8, roughness=1.0, latent={"samples": latent})
    assert torch.equal(no_vae.final, latent[0]) and no_vae.steps == 8


def test_the_widgets_offer_the_engine_defaults():
    inputs = LatentPainterPlanFromImage.INPUT_TYPES()
    steps, roughness = inputs["required"]["steps"][1], inputs["required"]["roughness"][1]
    assert (steps["default"], steps["min"], roughness["default"], roughness["max"]) == (30, 1, 1.0, 1)
    assert roughness["min"] > 0
    for group in inputs.values():
        assert all(options[1].get("tooltip") for options in group.values())
    assert list(inputs["optional"]) == ["image", "vae", "latent", "model"]


def test_cancel_stops_between_encodes(vae, image, monkeypatch):
    monkeypatch.setattr(host, "progress", Progress(interrupt_after=2))
    with pytest.raises(Interrupted):
        results(NODE, steps=8, roughness=1.0, image=image, vae=vae)


def test_errors_name_the_node_the_input_and_the_fix(vae, image, progress):
    with pytest.raises(ValueError, match=r"^Plan From Image: image: nothing to paint; connect an image"):
        results(NODE, steps=8, roughness=1.0)
    with pytest.raises(ValueError, match=r"^Plan From Image: vae: is needed to paint an image"):
        results(NODE, steps=8, roughness=1.0, image=image)
    with pytest.raises(ValueError, match=r"^Plan From Image: roughness: roughness must be a number above 0"):
        results(NODE, steps=8, roughness=0.0, image=image, vae=vae)
    with pytest.raises(ValueError, match=r"^Plan From Image: steps: must be a whole number from 1"):
        results(NODE, steps=0, roughness=1.0, image=image, vae=vae)
    with pytest.raises(ValueError, match=r"^Plan From Image: image: expected an IMAGE batch"):
        results(NODE, steps=8, roughness=1.0, image=image[0], vae=vae)
    with pytest.raises(ValueError, match=r"^Plan From Image: vae: is not a VAE"):
        results(NODE, steps=8, roughness=1.0, image=image, vae="vae")
    with pytest.raises(ValueError, match=r"^Plan From Image: vae: the image is one flat colour"):
        results(NODE, steps=8, roughness=1.0, image=torch.full((1, 64, 64, 3), 0.3), vae=vae)
    with pytest.raises(ValueError, match=r"^Plan From Image: latent: expected a LATENT"):
        results(NODE, steps=8, roughness=1.0, latent=torch.zeros(1, 4, 8, 8))
