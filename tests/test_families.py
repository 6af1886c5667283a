"""The rule is the latent's shape: Flux.2 as ComfyUI hands it over (128 channels at 1/16) and pixel
space (ChromaRadiance: 3 channels at 1/1) paint with strokes of the same size in the image as every
other family, the channel groups and preview factors fit their width, and a painting too large for
the declared budget (painter/engine/limits.py) is refused before anything is painted."""

from __future__ import annotations

import math

import pytest
import torch

from nodes_support import FakeModel, Flux2LikeFormat, PixelFormat, ScaledVAE, results, run
from plans import blurry_to_sharp_plan

from latent_painter.nodes import host
from latent_painter.painter.engine.paint import PaintOptions, generate_events, paint
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.engine.strokes import STROKE24_RADII, Strokes, radius_for

# The latent side of a 1024 px image and the pixels one latent pixel covers, per family.
FAMILIES_1024 = {"SD 1/8": (128, 8), "Flux.2 1/16": (64, 16), "pixel space 1/1": (1024, 1)}


def test_stroke_radii_are_the_same_in_image_pixels_for_every_scale():
    settings = Strokes()
    budget = len(settings.radii)
    for stroke in range(budget):
        pixels = {name: radius_for(settings, stroke, budget, 1.0, side) * scale
                  for name, (side, scale) in FAMILIES_1024.items()}
        assert len({round(v, 6) for v in pixels.values()}) == 1, pixels
        # the author's ramp on a 64x64 latent of a 512 px SD image: the same share of the image side
        assert math.isclose(pixels["SD 1/8"] / 1024, STROKE24_RADII[stroke] * 8 / 512)
    # Flux.2's 64x64 latent of a 1024 px image gets the author's radii in latent pixels, 1 to 12
    assert [radius_for(settings, s, budget, 1.0, 64) for s in range(budget)] == list(STROKE24_RADII)
    # pixel space: the smallest stroke is 16 px across at 1024 px, 4 px at 256 px: never below one pixel
    assert radius_for(settings, 0, budget, 1.0, 1024) == 16 and radius_for(settings, 0, budget, 1.0, 256) == 4


def test_a_flux2_width_plan_paints_whole_latent_pixels_and_is_paced_by_its_own_factors(progress):
    fmt = host.latent_format(FakeModel(Flux2LikeFormat()))
    plan = blurry_to_sharp_plan(channels=128, size=16, steps=4, latent_format=fmt)
    assert Strokes().group_size(128) == 128  # automatic groups: a stroke paints every channel
    stages = (Strokes(radii=(1, 2, 3, 4)),)
    strokes = [e for e in generate_events(plan.targets, torch.zeros_like(plan.final), stages, PaintOptions())
               if e.lead is not None]
    # every stroke paints whole latent pixels: all 128 channels, the ones with gain under it
    assert strokes and all(event.channels.numel() == 128 for event in strokes[:8])
    assert torch.equal(paint(plan, stages, PaintOptions(pacing="strokes")).frames[-1], plan.final)
    vae = ScaledVAE(128, 16)
    (canvas,) = run("LatentPainterCanvas", vae=vae, plan=plan, kind="white", colour="#FFFFFF")
    assert canvas["samples"].shape == (1, 128, 16, 16)  # a 256 px white image at 1/16
    frames, *_ = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=24, pacing="change",
                     cleanup_frames=4, seed=0, canvas=canvas, vae=vae)
    assert frames["samples"].shape == (24, 128, 16, 16) and torch.equal(frames["samples"][-1], plan.final)
    (images,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=8, white_canvas=False,
                        stroke_map_side_by_side=False, decode="full")
    assert images.shape == (24, 256, 256, 3)


def test_a_pixel_space_plan_paints_on_the_pixel_grid(progress):
    fmt = host.latent_format(FakeModel(PixelFormat()))
    assert fmt.channels == 3 and fmt.rgb_factors == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    plan = blurry_to_sharp_plan(channels=3, size=96, steps=3, latent_format=fmt)
    assert Strokes().group_size(3) == 3  # whole pixels: red, green and blue one by one paint primaries
    vae = ScaledVAE(3, 1)
    (canvas,) = run("LatentPainterCanvas", vae=vae, plan=plan, kind="white", colour="#FFFFFF")
    assert torch.equal(canvas["samples"], torch.ones(1, 3, 96, 96))  # white paper is the pixels themselves
    frames, stroke_map, count, maps = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=30,
                                          pacing="change", cleanup_frames=4, seed=0, canvas=canvas, vae=vae)
    assert torch.equal(frames["samples"][-1], plan.final)
    (images,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=8, white_canvas=True,
                        stroke_map_side_by_side=True, stroke_maps=maps, decode="auto")
    assert images.shape == (count, 96, 192, 3)  # one pixel per latent pixel, the stroke map beside
    assert torch.equal(images[-1, :, :96], vae.decode(plan.final[None])[0])


def test_a_pixel_space_painting_beyond_the_budget_is_refused_before_painting(progress):
    final = torch.zeros(3, 1024, 1024)
    plan = make_plan(torch.stack([final, final]))
    with pytest.raises(ValueError, match=r"^Paint: 400 frames of a 3x1024x1024 latent with their stroke maps need "
                                         r"8\.6 GiB, more than 8 GiB; ask for fewer frames or a smaller latent$"):
        run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=400, pacing="strokes", cleanup_frames=4,
            seed=0)
    assert progress.reports == []  # refused before a stroke was painted


def test_strokes_on_a_pixel_space_latent_are_placed_on_a_coarser_grid_where_the_gain_is():
    from latent_painter.painter.engine.strokes import PLACEMENT_SIDE, placement_step

    assert placement_step(PLACEMENT_SIDE, 128) == 1 and placement_step(1024, 1024) == 4  # 1024 px pixel space
    side, spot = 600, (403, 141)  # a 600 px pixel-space image: a grid of 3 pixels
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    final = torch.zeros(3, side, side)
    final[1][(rows - spot[0]) ** 2 + (cols - spot[1]) ** 2 <= 20**2] = 1.0  # one green disk to paint
    plan = make_plan(final[None])
    events = generate_events(plan.targets, torch.zeros_like(final), (Strokes(radii=(20,), size_scale=1.0),),
                             PaintOptions())
    first = events[0]
    centre = (first.top + first.mask.shape[-2] // 2, first.left + first.mask.shape[-1] // 2)
    assert first.channels.tolist() == [1]
    assert abs(centre[0] - spot[0]) <= 3 and abs(centre[1] - spot[1]) <= 3, centre  # within one grid cell
    assert torch.equal(paint(plan, (Strokes(),), PaintOptions(pacing="strokes", frames=12)).frames[-1], plan.final)


@pytest.mark.parametrize("shape", [(4, 4, 8, 8), (4, 16, 1, 8, 8), (4, 48, 1, 8, 8), (4, 64, 4, 4), (4, 128, 8, 8),
                                   (4, 3, 48, 48)],
                         ids=["SD", "Wan21", "Wan22", "HunyuanImage21", "Flux2", "pixel space"])
def test_every_family_s_shape_paints_and_comes_back_in_its_own_shape(progress, shape):
    generator = torch.Generator().manual_seed(len(shape) + shape[1])
    latents = torch.randn(shape, generator=generator)
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": latents})
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=10,
                                       pacing="strokes", cleanup_frames=2, seed=0)
    assert frames["samples"].shape == (count, *shape[1:]) and stroke_map.shape == (count, *shape[-2:])
    assert torch.equal(frames["samples"][-1], latents[-1])  # the last latent, bit for bit, in its own shape
