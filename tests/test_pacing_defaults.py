"""Change pacing with every default (issue 10): a plan whose latent format has no RGB preview
factors gets them fitted to the connected VAE, so its change estimate sees colour."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.projection import explained_variance, fit_rgb_to_decoder, principal_projection
from latent_painter.painter.engine.strokes import Strokes


def nonlinear_decode(latents: torch.Tensor) -> torch.Tensor:
    """A deterministic non-linear decoder: [N,4,H,W] -> images [N,2H,2W,3] in 0..1."""
    rgb = torch.stack([latents[:, 0] + 0.5 * latents[:, 1], latents[:, 1] - latents[:, 2], latents[:, 3]], -1)
    return torch.sigmoid(2 * rgb).repeat_interleave(2, 1).repeat_interleave(2, 2)


def test_factors_fitted_to_the_decoder_explain_its_colours():
    plan = blurry_to_sharp_plan(channels=4, size=16, steps=8)
    factors = fit_rgb_to_decoder(plan.targets, nonlinear_decode)
    assert factors.shape == (4, 3)
    images = nonlinear_decode(plan.targets)
    bias = images.mean((0, 1, 2)) - torch.einsum("nchw,ck->k", plan.targets, factors) / (8 * 16 * 16)
    assert explained_variance(plan.targets, images, factors, bias) > 0.8
    # channel 3 drives blue alone, channel 0 red and not blue
    assert factors[3, 2] > 0.1 and abs(float(factors[0, 2])) < 0.05 and factors[0, 0] > 0.1


def test_a_decoder_whose_images_do_not_fit_the_latents_gives_no_factors():
    plan = blurry_to_sharp_plan(channels=4, size=16, steps=4)
    assert fit_rgb_to_decoder(plan.targets, lambda x: torch.rand(x.shape[0], 20, 20, 3)) is None


def test_paint_with_a_vae_and_no_preview_factors_paces_on_the_fitted_factors():
    bare = blurry_to_sharp_plan(channels=4, size=16, steps=5)
    assert bare.latent_format.rgb_factors is None
    canvas = torch.zeros_like(bare.final)
    fitted = fit_rgb_to_decoder(torch.cat([canvas[None], bare.targets]), nonlinear_decode)
    fmt = dataclasses.replace(bare.latent_format, rgb_factors=tuple(tuple(row) for row in fitted.tolist()))
    informed = dataclasses.replace(bare, latent_format=fmt)
    options = PaintOptions(frames=24, pacing="change")
    without = paint(bare, (Strokes(),), options, decode=nonlinear_decode)
    with_factors = paint(informed, (Strokes(),), options, decode=nonlinear_decode)
    assert torch.equal(without.frames, with_factors.frames)


def test_without_factors_or_decoder_change_is_seen_along_the_final_latents_principal_directions():
    bare = blurry_to_sharp_plan(channels=4, size=16, steps=5, seed=2)
    directions = principal_projection(bare.final)
    assert directions.shape == (4, 3)
    assert torch.allclose(directions.T @ directions, torch.eye(3), atol=1e-5)
    fmt = dataclasses.replace(bare.latent_format, rgb_factors=tuple(tuple(row) for row in directions.tolist()))
    informed = dataclasses.replace(bare, latent_format=fmt)
    options = PaintOptions(frames=20, pacing="change")
    assert torch.equal(paint(bare, (Strokes(),), options).frames, paint(informed, (Strokes(),), options).frames)
    # a two-channel latent has two directions
    assert principal_projection(torch.randn(2, 8, 8)).shape == (2, 2)
