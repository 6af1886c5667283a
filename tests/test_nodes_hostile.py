"""Hostile node inputs, property-based: odd dtypes and shapes, NaN/inf, extreme widget values,
plans and canvases that do not fit together. Every call ends in the node's own error (a ValueError
that starts with its display name) or in a result that is correct, checked here against what the
node promises. Run with --hypothesis-show-statistics to see how many cases ran and how they ended.

The nodes are called as ComfyUI calls them (tests/nodes_support.run); only the host's progress
bar and folders are faked, as in test_nodes_run.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from plans import blurry_to_sharp_plan

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES
from latent_painter.nodes import host
from latent_painter.painter.engine.limits import LIMITS

MAX_FPS = LIMITS["fps"].high
from latent_painter.painter.engine.plan import LatentFormat, Plan, make_plan
from latent_painter.painter.engine.limits import LIMITS

MAX_FRAMES = int(LIMITS["frames"].high)
from nodes_support import Progress, results, run

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PAINT_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW_FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.uint8, torch.bool,
          torch.complex64)
HOSTILE_FILLS = ("zeros", "nan", "inf", "huge")


def mostly(valid, hostile):
    """Four draws in five from what the node is meant to get, one from what it must refuse or survive:
    so that correct results are checked as often as refusals."""
    return st.one_of(*(valid.map(lambda value: value) for _ in range(4)), hostile)  # distinct objects: not merged


@pytest.fixture(autouse=True)
def quiet_progress(monkeypatch):
    monkeypatch.setattr(host, "progress", Progress())


@st.composite
def tensors(draw, dims=4, side=st.integers(1, 4), dtypes=DTYPES):
    """Tensors of ``dims`` dimensions (sometimes another count), sides from ``side`` (sometimes 0),
    float32 (sometimes another of ``dtypes``), normal values (sometimes zeros, a NaN, an inf or ~1e38)."""
    count = draw(mostly(st.just(dims), st.integers(0, 5)))
    shape = draw(st.lists(mostly(side, st.integers(0, 1)), min_size=count, max_size=count))
    dtype = draw(mostly(st.just(torch.float32), st.sampled_from(dtypes)))
    fill = draw(st.one_of(st.just("normal"), st.just("normal"), st.sampled_from(HOSTILE_FILLS)))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    values = torch.randn(shape, generator=generator)
    if fill == "zeros":
        values = torch.zeros(shape)
    elif fill in ("nan", "inf") and values.numel():
        values.view(-1)[draw(st.integers(0, values.numel() - 1))] = float(fill)
    elif fill == "huge":
        values = values * 1e38
    return values.to(dtype)


def latents(tensor_strategy=None):
    """What may arrive at a LATENT input: mostly a {'samples': tensor} dict, sometimes not."""
    tensor_strategy = tensors() if tensor_strategy is None else tensor_strategy
    return mostly(tensor_strategy.map(lambda t: {"samples": t}),
                  st.one_of(st.sampled_from([None, {}, {"samples": None}, {"samples": "text"}, {"samples": [[1.0]]}]),
                            tensor_strategy))


def with_value(shape, index, value, dtype=torch.float32):
    """A normal latent with one hostile value: the case each @example below pins (found by this file's fuzzing)."""
    tensor = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    tensor.view(-1)[index] = value
    return tensor.to(dtype)


def ends_as_designed(node_id: str, call):
    """The call's result, or None when it raised the node's named ValueError; anything else fails the test."""
    display = NODES[node_id].DISPLAY_NAME
    try:
        result = call()
    except ValueError as error:
        assert str(error).startswith(display + ":"), f"{node_id} raised without its name: {error}"
        event(f"{node_id}: refused ({' '.join(str(error).split(':')[1].split()[:4])})")
        return None
    event(f"{node_id}: result")
    return result


def well_formed(latent: torch.Tensor) -> bool:
    return latent.dtype == torch.float32 and bool(torch.isfinite(latent).all())


# --- plans from latents ----------------------------------------------------------------------------


@FUZZ
@given(latent=latents(), final=st.one_of(st.none(), latents()))
def test_plan_from_latents(latent, final):
    plan = ends_as_designed("LatentPainterPlanFromLatents",
                            lambda: run("LatentPainterPlanFromLatents", latents=latent, final=final))
    if plan is None:
        return
    (plan,) = plan
    samples = latent["samples"]
    assert isinstance(plan, Plan) and well_formed(plan.originals) and well_formed(plan.final)
    assert plan.originals.shape == samples.shape
    assert torch.equal(plan.originals, samples.to(torch.float32))
    expected_final = samples[-1] if final is None else final["samples"][0]
    assert torch.equal(plan.final, expected_final.to(torch.float32))


# --- painters and Paint ----------------------------------------------------------------------------

HOSTILE_FLOATS = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([-0.0, 1e-300, 1e308, math.inf, -math.inf, math.nan]))
HOSTILE_INTS = st.one_of(st.integers(-3, 3), st.sampled_from([4096, 10_001, 2**31, 2**64, -(2**63)]))


def floats(low, high):
    return mostly(st.floats(low, high), HOSTILE_FLOATS)


def ints(low, high):
    return mostly(st.integers(low, high), HOSTILE_INTS)


channel_texts = mostly(st.sampled_from(["", "0", "0,2-3", "1-0", "9"]),
                       st.one_of(st.sampled_from(["4095", "4096", "-1", "a", "0,,1", "0-99999"]), st.text(max_size=6)))


@st.composite
def painter_chains(draw):
    """A chain built through the painter nodes from hostile widgets; None when a node refused them."""
    chain = None
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            inputs = dict(preset=draw(mostly(st.sampled_from(["stroke24", "stroke8", "stroke48"]), st.just("bogus"))),
                          brush=draw(mostly(st.sampled_from(["disk", "square", "soft"]), st.just("round"))),
                          channels=draw(channel_texts), move_cost=draw(floats(0, 100)), switch_cost=draw(floats(0, 100)),
                          motivation=draw(floats(0, 100)), size_scale=draw(floats(0, 64)),
                          early_size=draw(floats(0.01, 16)), strokes_per_frame=draw(ints(1, 4096)),
                          schedules=draw(ints(0, 6)), previous=chain)
            node_id = "LatentPainterStrokes"
        else:
            inputs = dict(kind=draw(mostly(st.sampled_from(["fade", "glow", "flip", "dissolve"]), st.just("melt"))),
                          frames=draw(mostly(st.integers(0, 6), st.sampled_from([-1, 1024, 1025]))),
                          channels=draw(channel_texts), motivation=draw(floats(0, 100)), block=draw(floats(0.1, 512)),
                          fraction=draw(floats(0.01, 1)), schedules=draw(ints(0, 6)), previous=chain)
            node_id = "LatentPainterAction"
        result = ends_as_designed(node_id, lambda: run(node_id, **inputs))
        if result is None:
            return None
        (chain,) = result
    return chain


DEFAULT_CHAIN = run("LatentPainterStrokes", preset="stroke8", brush="disk", channels="", move_cost=0.1, switch_cost=0.0,
                    motivation=0.0, size_scale=0.0, early_size=1.5, strokes_per_frame=2, schedules=0)[0]
plans = st.builds(blurry_to_sharp_plan, channels=st.integers(1, 4), size=st.integers(1, 8), steps=st.integers(1, 5),
                  seed=st.integers(0, 99))
frame_counts = mostly(st.one_of(st.just(0), st.integers(2, 40)), st.sampled_from([-1, 1, MAX_FRAMES + 1, 10**12]))


@PAINT_FUZZ
@given(plan=plans, chain=painter_chains(), frames=frame_counts,
       pacing=mostly(st.sampled_from(["strokes", "change"]), st.sampled_from(["bogus", ""])),
       cleanup=mostly(st.integers(0, 12), st.sampled_from([-1, 10_000, 10_001])),
       seed=mostly(st.integers(0, 2**32 - 1), st.sampled_from([-1, 2**64])),
       canvas=st.one_of(st.none(), latents(), st.integers(0, 2**16)))
def test_paint(plan, chain, frames, pacing, cleanup, seed, canvas):
    chain = chain or DEFAULT_CHAIN
    if isinstance(canvas, int):  # a canvas of the plan's size, randomly filled: the case that must paint
        canvas = {"samples": torch.randn((2, *plan.final.shape), generator=torch.Generator().manual_seed(canvas))}
    result = ends_as_designed("LatentPainterPaint", lambda: run(
        "LatentPainterPaint", plan=plan, painter=chain, frames=frames, pacing=pacing, cleanup_frames=cleanup,
        seed=seed, canvas=canvas))
    if result is None:
        return
    painted, stroke_map, count, maps = result
    samples = painted["samples"]
    assert samples.shape == (count, *plan.final.shape) and well_formed(samples)
    assert maps.coverage.shape == maps.channels.shape == (count, *plan.spatial) and maps.num_channels == plan.channels
    if frames:
        assert count == frames
    start = torch.zeros_like(plan.final) if canvas is None else canvas["samples"][0].to(torch.float32)
    assert torch.equal(samples[0], start)
    assert torch.equal(samples[-1], plan.final)  # ends on the final latent bit for bit
    assert stroke_map.shape == (count, *plan.spatial) and well_formed(stroke_map)
    assert float(stroke_map.min()) >= 0 and float(stroke_map.max()) <= 1


# --- transitions between plans that may not fit together ---------------------------------------------

formats = mostly(st.none(), st.sampled_from([LatentFormat("SD15", 0, 0.18215), LatentFormat("SDXL", 0, 0.13025)]))


SHAPES_OF_A = (3, 5, 2)  # plans B and C mostly share A's (channels, size, steps): plans that fit together


@st.composite
def transition_plans(draw, first=None):
    plan = draw(plans if first is None else mostly(st.just(first), plans))
    latent_format = draw(formats)
    if latent_format is not None:
        plan = make_plan(plan.originals, plan.final, plan.sigmas, latent_format)
    return plan


@SLOW_FUZZ
# a transition from an image to itself with depth 0: nothing to paint (was an IndexError)
@example(plan_a=blurry_to_sharp_plan(1, 1, 1), plan_b=blurry_to_sharp_plan(1, 1, 1), plan_c=None, depth=0.0, guidance=0.0,
         guidance_steps=1, interpolation="lerp", pingpong=False, resize=False, frames=2)
@given(plan_a=transition_plans(blurry_to_sharp_plan(*SHAPES_OF_A)),
       plan_b=st.one_of(transition_plans(blurry_to_sharp_plan(*SHAPES_OF_A, seed=1)),
                        st.just(blurry_to_sharp_plan(*SHAPES_OF_A))),
       plan_c=st.one_of(st.none(), transition_plans(blurry_to_sharp_plan(*SHAPES_OF_A, seed=2))),
       depth=floats(0, 1), guidance=floats(0, 1), guidance_steps=ints(1, 20),
       interpolation=mostly(st.sampled_from(["over", "lerp", "slerp"]), st.just("cubic")), pingpong=st.booleans(),
       resize=st.booleans(), frames=mostly(st.one_of(st.just(0), st.integers(2, 12)), st.sampled_from([1, MAX_FRAMES + 1])))
def test_transition(plan_a, plan_b, plan_c, depth, guidance, guidance_steps, interpolation, pingpong, resize, frames):
    result = ends_as_designed("LatentPainterTransition", lambda: run(
        "LatentPainterTransition", plan_a=plan_a, plan_b=plan_b, plan_c=plan_c, painter=DEFAULT_CHAIN, depth=depth,
        guidance=guidance, guidance_steps=guidance_steps, interpolation=interpolation, pingpong=pingpong,
        resize=resize, frames=frames, pacing="change", cleanup_frames=2, seed=0))
    if result is None:
        return
    painted, stroke_map, count, maps = result
    samples = painted["samples"]
    assert samples.shape[0] == count and well_formed(samples) and samples.shape[1:] == plan_a.final.shape
    assert maps.coverage.shape == (count, *plan_a.spatial)
    assert torch.equal(samples[0], plan_a.final)
    last = plan_a if pingpong else (plan_c or plan_b)
    if last is plan_a or last.final.shape == plan_a.final.shape:
        assert torch.equal(samples[-1], last.final)
    assert stroke_map.shape == (count, *plan_a.spatial) and well_formed(stroke_map)


@FUZZ
@example(a={"samples": torch.zeros(1, 4, 2, 2)}, b={"samples": with_value((1, 4, 2, 2), 3, math.inf)}, frames=4,
         interpolation="slerp")  # gave non-finite latents
@example(a={"samples": torch.zeros(1, 4, 2, 2, dtype=torch.int64)}, b={"samples": torch.ones(1, 4, 2, 2, dtype=torch.int64)},
         frames=3, interpolation="lerp")
@given(a=latents(), b=latents(), frames=mostly(st.integers(2, 30), st.sampled_from([-1, 0, 1, MAX_FRAMES + 1])),
       interpolation=mostly(st.sampled_from(["lerp", "slerp"]), st.just("cubic")))
def test_interpolate(a, b, frames, interpolation):
    result = ends_as_designed("LatentPainterInterpolate", lambda: run(
        "LatentPainterInterpolate", latent_a=a, latent_b=b, frames=frames, interpolation=interpolation))
    if result is None:
        return
    samples = result[0]["samples"]
    first, last = a["samples"][0].to(torch.float32), b["samples"][0].to(torch.float32)
    assert samples.shape == (frames, *first.shape) and well_formed(samples)
    assert torch.equal(samples[0], first) and torch.equal(samples[-1], last)


# --- decoding and assembling ---------------------------------------------------------------------


class TinyVAE:
    """A host-free decoder with a ComfyUI VAE's decode interface: [n,C,h,w] -> [n,8h,8w,3] in 0..1."""

    def decode(self, samples):
        rgb = torch.sigmoid(samples[:, :1].expand(-1, 3, -1, -1).float()).permute(0, 2, 3, 1)
        return rgb.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).contiguous()


@FUZZ
@example(frames={"samples": with_value((3, 4, 2, 2), 5, math.nan)}, chunk_size=2, white_canvas=False, side_by_side=False,
         stroke_map=None)  # decoded into NaN frames
@example(frames={"samples": torch.zeros(2, 4, 2, 2, dtype=torch.uint8)}, chunk_size=1, white_canvas=False,
         side_by_side=False, stroke_map=None)
@given(frames=latents(tensors(side=st.integers(1, 3))),
       chunk_size=mostly(st.one_of(st.integers(1, 5), st.just(4096)), st.sampled_from([0, -1, 10**12, 2.5, "3", True])),
       white_canvas=st.booleans(), side_by_side=st.booleans(),
       stroke_map=mostly(st.just("matching"), st.one_of(st.none(), tensors(dims=3, side=st.integers(1, 3)))))
def test_decode_frames(frames, chunk_size, white_canvas, side_by_side, stroke_map):
    if isinstance(stroke_map, str) and isinstance(frames, dict) and isinstance(frames.get("samples"), torch.Tensor):
        samples = frames["samples"]
        stroke_map = torch.rand(samples.shape[0], *samples.shape[-2:]) if samples.dim() in (4, 5) else None
    elif isinstance(stroke_map, str):
        stroke_map = None
    result = ends_as_designed("LatentPainterDecodeFrames", lambda: results(
        "LatentPainterDecodeFrames", vae=TinyVAE(), frames=frames, chunk_size=chunk_size, white_canvas=white_canvas,
        stroke_map_side_by_side=side_by_side, stroke_map=stroke_map))
    if result is None:
        return
    (images,) = result
    samples = frames["samples"]
    if samples.dim() == 5:  # [B,C,1,H,W] is an image latent (a time axis of one)
        samples = samples[:, :, 0]
    n, _, h, w = samples.shape
    assert images.shape == (n, 8 * h, 8 * w * (2 if side_by_side else 1), 3)
    assert well_formed(images) and float(images.min()) >= 0 and float(images.max()) <= 1
    if not white_canvas:
        assert torch.equal(images[..., : 8 * w, :], TinyVAE().decode(samples.to(torch.float32)))


# Now and then a 256x256 frame: with large holds that is past the image memory limit (refused, not allocated).
images_in = mostly(tensors(side=st.integers(1, 3), dtypes=DTYPES[:4]),
                   st.integers(1, 2).map(lambda n: torch.rand(n, 256, 256, 3, generator=torch.Generator().manual_seed(n))))


@FUZZ
@example(images=torch.rand(1, 256, 256, 3), more=None, hold_first=0, hold_last=99_999, pingpong=False, fps=24.0,
         duration=0.0)  # 78 GiB: was an allocation attempt
@example(images=torch.rand(3, 2, 2, 3), more=None, hold_first=0, hold_last=0, pingpong=False, fps=math.inf,
         duration=0.0)  # an infinite frame rate was returned
@example(images=torch.rand(3, 2, 2, 3), more=None, hold_first=0, hold_last=0, pingpong=False, fps=24.0,
         duration=1e-300)
@given(images=images_in, more=st.one_of(st.none(), images_in, st.just("same")),
       hold_first=ints(0, 5), hold_last=mostly(st.integers(0, 5), st.sampled_from([-1, 99_999, 2**40])),
       pingpong=st.booleans(), fps=floats(0.01, 1000),
       duration=st.one_of(st.just(0.0), floats(0, 3600)))
def test_assemble_frames(images, more, hold_first, hold_last, pingpong, fps, duration):
    more = images.clone() if isinstance(more, str) else more
    result = ends_as_designed("LatentPainterAssembleFrames", lambda: run(
        "LatentPainterAssembleFrames", images=images, hold_first=hold_first, hold_last=hold_last, pingpong=pingpong,
        fps=fps, duration_seconds=duration, more_images=more))
    if result is None:
        return
    out, rate = result
    assert isinstance(rate, float) and 0 < rate <= MAX_FPS
    assert out.shape[1:] == images.shape[1:] and out.dtype == images.dtype
    # the documented order: the joined sequences (a repeated join frame once), the first frame held
    # 1 + hold_first times, the last 1 + hold_last times, then with pingpong the way back without the turns
    joined = images if more is None else torch.cat([images, more[1:] if torch.equal(images[-1], more[0]) else more])
    length = joined.shape[0]
    if length == 1:
        order = [0] * (1 + hold_first + hold_last)
    else:
        order = ([0] * (1 + hold_first) + list(range(1, length - 1)) + [length - 1] * (1 + hold_last)
                 + (list(range(length - 2, 0, -1)) if pingpong else []))
    # every frame unchanged and in its place (NaN included), in the first sequence's dtype
    assert same(out, joined[order].to(images.dtype))


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()))
