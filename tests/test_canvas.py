"""Canvases (white paper, black, flat mean colour, a chosen colour), the default canvas of Paint,
the soft white-canvas mask and the coloured stroke map through the nodes.

The canvas tests run the real taef2 encoder and decoder (FLUX.2's 32-channel latent space);
they skip when its weights are not at hand.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nodes_support import results, run
from plans import blurry_to_sharp_plan

from latent_painter.painter.render import composite, decoding
from latent_painter.painter.engine.canvas import default_canvas, flat_canvas, make_canvas, mean_colour, parse_colour
from latent_painter.painter.engine.gain import brush_kernel
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.engine.strokes import Strokes

SIZE = 64  # pixels; 8x8 latents keep the real encoder and decoder fast


@pytest.fixture(scope="module")
def taef2(taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(taesd_folder, "taef2")


@pytest.fixture(scope="module")
def photo_plan(taef2):
    """A plan in taef2's space from a real photo: its latent blurred less and less, ending on it."""
    from latent_painter.painter.tools.demo import load_photos

    final = taef2.encode(load_photos(["astronaut"], SIZE))[0]
    originals = [F.avg_pool2d(final[None], k, 1, k // 2, count_include_pad=False)[0] for k in (7, 5, 3)]
    return make_plan(torch.stack([*originals, final]))


def decoded_mean(vae, latent: torch.Tensor) -> torch.Tensor:
    return vae.decode(latent[None])[0].mean(dim=(0, 1))


def grid_texture(image: torch.Tensor) -> float:
    """Mean |difference| between neighbouring pixels: 0 for a flat image, high for grids and halftones."""
    return float((image[1:] - image[:-1]).abs().mean() + (image[:, 1:] - image[:, :-1]).abs().mean())


# --- colours ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, rgb", [
    ("#FFFFFF", (1.0, 1.0, 1.0)), ("#000000", (0.0, 0.0, 0.0)), ("#ff8000", (1.0, 128 / 255, 0.0)),
    ("3366CC", (0.2, 0.4, 0.8)), ("#fff", (1.0, 1.0, 1.0)), (" #0F0 ", (0.0, 1.0, 0.0)),
])  # fmt: skip
def test_parse_colour(text, rgb):
    assert parse_colour(text) == pytest.approx(rgb)


@pytest.mark.parametrize("text", ["", "#12345", "red", "#GGGGGG", "#1234567", "rgb(1,2,3)", None, 255])
def test_parse_colour_refuses_with_the_form_to_use(text):
    with pytest.raises(ValueError, match=r"^.* is not a colour; write it as #RRGGBB"):
        parse_colour(text)


# --- canvases on the real taef2 encoder/decoder ---------------------------------------------------


@pytest.fixture(scope="module")
def canvases(taef2, photo_plan):
    """Every kind of canvas for the photo plan, encoded once (the real encoder is the slow part)."""
    final = photo_plan.final
    return {
        "white": make_canvas("white", final, taef2.encode),
        "black": make_canvas("black", final, taef2.encode),
        "flat": make_canvas("flat", final, taef2.encode, taef2.decode),
        "colour": make_canvas("colour", final, taef2.encode, colour=parse_colour("#3366CC")),
    }


def test_white_canvas_decodes_to_paper_white(taef2, photo_plan, canvases):
    white = canvases["white"]
    assert white.shape == photo_plan.final.shape and white.dtype == torch.float32
    assert float(decoded_mean(taef2, white).min()) >= 0.9


def test_black_flat_and_colour_canvases_decode_to_their_colour(taef2, photo_plan, canvases):
    assert float(decoded_mean(taef2, canvases["black"]).max()) <= 0.1
    mean = torch.tensor(mean_colour(taef2.decode, photo_plan.final))
    assert torch.allclose(mean, taef2.decode(photo_plan.final[None])[0].mean(dim=(0, 1)))
    assert torch.allclose(decoded_mean(taef2, canvases["flat"]), mean, atol=0.02)
    assert torch.allclose(decoded_mean(taef2, canvases["colour"]), torch.tensor([0.2, 0.4, 0.8]), atol=0.03)
    # Every canvas is flat where the zero latent shows the decoder's grid.
    zero = taef2.decode(torch.zeros(1, *photo_plan.final.shape))[0]
    decoded = taef2.decode(torch.stack([canvases[kind] for kind in ("black", "flat", "colour")]))
    for image in decoded:
        assert grid_texture(image) < grid_texture(zero) / 3


def test_canvas_refuses_a_vae_of_another_latent_space(taef2, photo_plan):
    sd_like = blurry_to_sharp_plan(channels=4, size=8)
    with pytest.raises(ValueError, match=r"latents of shape \(1, 32, 8, 8\).*plan's latents are \[1,4,8,8\].*VAE of the model"):
        make_canvas("white", sd_like.final, taef2.encode)
    with pytest.raises(ValueError, match=r"encodes a 128x128 image to latents of shape \(1, 32, 16, 16\)"):
        flat_canvas(taef2.encode, (1.0, 1.0, 1.0), tuple(photo_plan.final.shape), scale=16)
    with pytest.raises(ValueError, match="kind 'sepia' is unknown; use one of white, black, flat, colour"):
        make_canvas("sepia", photo_plan.final, taef2.encode)
    with pytest.raises(ValueError, match="kind 'flat' needs a decoder"):
        make_canvas("flat", photo_plan.final, taef2.encode)


def test_default_canvas_is_zero_without_a_vae_and_the_flat_mean_with_one(taef2, photo_plan, canvases):
    assert torch.equal(default_canvas(photo_plan.final), torch.zeros_like(photo_plan.final))
    assert torch.equal(default_canvas(photo_plan.final, taef2.encode, taef2.decode), canvases["flat"])


def test_painting_on_white_paper_starts_white_and_ends_on_the_final_latent(taef2, photo_plan, canvases):
    white = canvases["white"]
    painting = paint(photo_plan, (Strokes(),), PaintOptions(frames=24), white)
    assert torch.equal(painting.frames[0], white)
    assert torch.equal(painting.frames[-1], photo_plan.final)  # bit for bit
    first = taef2.decode(painting.frames[:1])[0]
    assert float(first.mean()) >= 0.9


# --- the nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["colour", "flat"])
def test_canvas_node_kinds(taef2, photo_plan, canvases, kind):
    (latent,) = run("LatentPainterCanvas", vae=taef2, plan=photo_plan, kind=kind, colour="#3366CC")
    assert set(latent) == {"samples"} and latent["samples"].shape == (1, *photo_plan.final.shape)
    assert torch.equal(latent["samples"][0], canvases[kind])


def test_canvas_node_white_ignores_the_colour(taef2, photo_plan, canvases):
    # The colour only counts for kind 'colour': a bad one elsewhere is ignored.
    (white,) = run("LatentPainterCanvas", vae=taef2, plan=photo_plan, kind="white", colour="not a colour")
    assert torch.equal(white["samples"][0], canvases["white"])


def test_canvas_node_errors_name_the_input(taef2, photo_plan):
    with pytest.raises(ValueError, match=r"^Canvas: colour: 'blue' is not a colour; write it as #RRGGBB"):
        run("LatentPainterCanvas", vae=taef2, plan=photo_plan, kind="colour", colour="blue")
    with pytest.raises(ValueError, match=r"^Canvas: vae: is not a VAE \(it has no encode\)"):
        run("LatentPainterCanvas", vae=object(), plan=photo_plan, kind="white", colour="#FFFFFF")
    with pytest.raises(ValueError, match=r"^Canvas: plan: is not a plan"):
        run("LatentPainterCanvas", vae=taef2, plan={"samples": torch.zeros(1, 32, 8, 8)}, kind="white", colour="#FFFFFF")
    with pytest.raises(ValueError, match=r"^Canvas: vae: .*plan's latents are \[1,4,8,8\]; connect the VAE of the model"):
        run("LatentPainterCanvas", vae=taef2, plan=blurry_to_sharp_plan(channels=4, size=8), kind="white",
            colour="#FFFFFF")


def test_paint_with_a_vae_starts_on_the_flat_mean_colour(taef2, photo_plan, canvases, progress):
    painter = (Strokes(),)
    # pacing 'strokes': the VAE then only makes the canvas (no calibration probes to decode).
    frames, _, count, _ = run("LatentPainterPaint", plan=photo_plan, painter=painter, frames=16, pacing="strokes",
                              cleanup_frames=4, seed=0, vae=taef2)
    latents = frames["samples"]
    assert torch.equal(latents[0], canvases["flat"])
    assert torch.equal(latents[-1], photo_plan.final)
    first, zero = taef2.decode(latents[:1])[0], taef2.decode(torch.zeros_like(latents[:1]))[0]
    assert grid_texture(first) < grid_texture(zero) / 3
    # A connected canvas wins over the default one.
    white = {"samples": canvases["white"][None]}
    frames, *_ = run("LatentPainterPaint", plan=photo_plan, painter=painter, frames=16, pacing="strokes",
                     cleanup_frames=4, seed=0, vae=taef2, canvas=white)
    assert torch.equal(frames["samples"][0], canvases["white"])
    assert torch.equal(frames["samples"][-1], photo_plan.final)


def test_paint_without_a_vae_keeps_the_zero_canvas(progress):
    plan = blurry_to_sharp_plan(channels=4, size=12)
    frames, stroke_map, count, maps = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=20,
                                          pacing="strokes", cleanup_frames=4, seed=0)
    engine = paint(plan, (Strokes(),), PaintOptions(frames=20, pacing="strokes", cleanup_frames=4))
    assert torch.equal(frames["samples"], engine.frames)  # today's painting, unchanged
    assert torch.equal(frames["samples"][0], torch.zeros_like(plan.final))
    assert torch.equal(maps.coverage, engine.coverage) and torch.equal(maps.channels, engine.channels)


class HueVAE:
    """A host-free stand-in with a VAE's decode: [n,C,h,w] -> [n,8h,8w,3]."""

    def decode(self, samples):
        rgb = torch.sigmoid(samples[:, :3]).permute(0, 2, 3, 1)
        return rgb.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).contiguous()


def test_stroke_maps_colour_the_side_by_side_map_in_the_node_path(progress):
    plan = blurry_to_sharp_plan(channels=4, size=12)
    frames, stroke_map, count, maps = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=30,
                                          pacing="strokes", cleanup_frames=4, seed=0)
    assert isinstance(maps, composite.StrokeMaps) and maps.num_channels == 4
    common = dict(vae=HueVAE(), frames=frames, chunk_size=8, white_canvas=False, stroke_map_side_by_side=True)
    (coloured,) = results("LatentPainterDecodeFrames", **common, stroke_maps=maps)
    (grey,) = results("LatentPainterDecodeFrames", **common, stroke_map=stroke_map)
    width = 12 * 8
    saturation = lambda image: image.amax(-1) - image.amin(-1)  # noqa: E731
    assert float(saturation(grey[:, :, width:]).max()) == 0.0  # a MASK carries no channels: grey
    # Every stroke frame shows its stroke in its channel's colour (the closing fade paints all channels: white).
    stroke_frames = (maps.channels[1:].flatten(1) >= 0).any(dim=1)
    assert stroke_frames.sum() > 10
    assert bool((saturation(coloured[1:, :, width:]).flatten(1).amax(1)[stroke_frames] > 0.5).all())
    assert torch.equal(coloured[:, :, :width], grey[:, :, :width])  # the painting itself is the same
    # Both connected: the full maps win.
    (both,) = results("LatentPainterDecodeFrames", **common, stroke_map=stroke_map, stroke_maps=maps)
    assert torch.equal(both, coloured)


def test_stroke_maps_errors(progress):
    plan = blurry_to_sharp_plan(channels=4, size=8)
    frames, _, count, maps = run("LatentPainterPaint", plan=plan, painter=(Strokes(),), frames=10, pacing="strokes",
                                 cleanup_frames=2, seed=0)
    common = dict(vae=HueVAE(), chunk_size=4, white_canvas=True, stroke_map_side_by_side=True)
    with pytest.raises(ValueError, match=r"^Decode Frames: stroke_maps: is not a painting's stroke maps"):
        run("LatentPainterDecodeFrames", frames=frames, **common, stroke_maps=torch.zeros(10, 8, 8))
    with pytest.raises(ValueError, match=r"^Decode Frames: .*coverage has shape \(10, 8, 8\) but the frames need \(4, 8, 8\)"):
        run("LatentPainterDecodeFrames", frames={"samples": frames["samples"][:4]}, **common, stroke_maps=maps)


# --- the soft white canvas ------------------------------------------------------------------------


def disk_coverage(radius: float, side: int = 15) -> torch.Tensor:
    """One disk stroke of ``radius`` latent pixels in the middle of a side x side latent: [1,side,side]."""
    kernel = brush_kernel(radius, "disk", "cpu")
    coverage = torch.zeros(1, side, side)
    half, middle = kernel.shape[0] // 2, side // 2
    coverage[0, middle - half : middle + half + 1, middle - half : middle + half + 1] = kernel
    return coverage


def contour_radius(mask: torch.Tensor, centre: float, direction: tuple[float, float]) -> float:
    """Distance from ``centre`` along ``direction`` to where ``mask`` [H,W] first drops below one half."""
    dy, dx = direction
    norm = math.hypot(dy, dx)
    for step in range(4 * mask.shape[0]):
        t = step / 4
        y, x = round(centre + dy / norm * t), round(centre + dx / norm * t)
        if mask[y, x] < 0.5:
            return t
    raise AssertionError("the mask never ends")


@pytest.mark.parametrize("radius", [3, 6])
def test_soft_mask_has_the_brush_shape_not_latent_blocks(radius):
    coverage = disk_coverage(radius)
    soft = composite.soft_coverage(coverage, (120, 120))[0]
    blocks = F.interpolate((coverage > 0).float()[None], size=(120, 120), mode="nearest")[0, 0]
    centre = 7 * 8 + 3.5
    along = contour_radius(soft, centre, (0, 1))
    diagonal = contour_radius(soft, centre, (1, 1))
    # Round: the disk reaches as far along the diagonal as along the axes (a staircase of blocks does not).
    assert along == pytest.approx((radius + 0.5) * 8, abs=1.0)
    assert abs(diagonal / along - 1) < 0.06
    # Feathered: across the edge the mask passes through several in-between values, over a few
    # pixels; the blocks jump from 1 to 0 between two pixels.
    row = soft[int(centre)]
    edge = row[int(centre) : int(centre) + int(along) + 8]
    between = ((edge > 0.02) & (edge < 0.98)).sum()
    assert 3 <= int(between) <= 8
    assert torch.all(edge[1:] <= edge[:-1])  # monotonic fall-off, no ringing
    assert int(((blocks[int(centre)] > 0) & (blocks[int(centre)] < 1)).sum()) == 0


def test_soft_mask_rounds_the_corners_of_latent_pixels():
    coverage = torch.zeros(1, 6, 6)
    coverage[0, 1:4, 1:4] = 1.0  # a painted 3x3 square of latent pixels: pixels 8..31
    soft = composite.soft_coverage(coverage, (48, 48))[0]
    blocks = F.interpolate(coverage[None], size=(48, 48), mode="nearest")[0, 0]
    assert blocks[8, 8] == 1.0 and blocks[31, 31] == 1.0  # blocks: square corners
    assert soft[8, 8] < 0.5 and soft[31, 31] < 0.5  # soft: cut round
    assert soft[8, 20] >= 0.5 and soft[20, 8] >= 0.5  # while the straight edges stay where the blocks put them
    assert soft[20, 20] == 1.0


def test_soft_mask_leaves_no_latent_pixel_grid_along_a_straight_edge():
    """Along a straight edge the soft mask is the same at every pixel (no 8-pixel period)."""
    coverage = torch.zeros(1, 6, 6)
    coverage[0, :, :3] = 1.0
    soft = composite.soft_coverage(coverage, (48, 48))[0]
    assert torch.allclose(soft, soft[:1].expand_as(soft))


def test_soft_mask_ends_exact_paper_and_exact_image():
    images = torch.rand(3, 48, 40, 3, generator=torch.Generator().manual_seed(0))
    coverage = torch.zeros(3, 6, 5)
    coverage[1] = 0.5  # everything painted (any positive coverage counts)
    coverage[2, 2:5, 1:4] = 1.0
    out = composite.composite_white(images, coverage)
    assert torch.all(out[0] == 1.0)  # nothing painted: paper
    assert torch.equal(out[1], images[1])  # all painted: the decoded image bit for bit
    assert torch.equal(out[2, 24:32, 16:24], images[2, 24:32, 16:24])  # inside a painted block
    assert torch.all(out[2, :8] == 1.0)  # far from it
    soft = composite.soft_coverage(coverage, (48, 40))
    assert float(soft.min()) == 0.0 and float(soft.max()) == 1.0


def test_white_canvas_with_the_real_decoder_starts_white_and_ends_exact(taef2, photo_plan):
    painting = paint(photo_plan, (Strokes(),), PaintOptions(frames=12))
    images = decoding.decode_frames(taef2.decode, painting, 6, white_canvas=True)
    plain = taef2.decode(painting.frames[-1:])
    assert torch.all(images[0] == 1.0)
    assert torch.allclose(images[-1], plain[0], atol=1e-5)  # unmasked (decoders differ per batch in the last bits)
    # In between: paper where nothing landed yet, the painting where strokes did.
    partly = [k for k in range(len(painting)) if (painting.coverage[k] > 0).any() and (painting.coverage[k] == 0).any()]
    assert partly
    middle = images[partly[0]]
    assert bool((middle == 1.0).all(-1).any()) and bool((middle < 1.0).any())
