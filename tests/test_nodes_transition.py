"""The Transition and Interpolate Latents (baseline) nodes on real tensors, without ComfyUI (only
host.progress is replaced)."""

from __future__ import annotations

import pytest
import torch
from plans import blurry_to_sharp_plan

from nodes_support import Interrupted, Progress, run

from latent_painter.nodes import host
from latent_painter.painter.tools.metrics import lerp_latents, slerp_latents
from latent_painter.painter.engine.paint import PROGRESS_STEPS
from latent_painter.painter.engine.plan import LatentFormat

SD15 = LatentFormat("SD15", 4, 0.18215, 0.0)
SDXL = LatentFormat("SDXL", 4, 0.13025, 0.0)
SD3 = LatentFormat("SD3", 16, 1.5305, 0.0609)


def plan(seed, fmt=SD15, channels=4, size=16, steps=6):
    return blurry_to_sharp_plan(channels=channels, size=size, steps=steps, seed=seed, latent_format=fmt)


def painter():
    (chain,) = run("LatentPainterStrokes", preset="stroke8", brush="disk", channels="", move_cost=0.1, switch_cost=0.0,
                   motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    return chain


def settings(**changes):
    values = dict(depth=0.5, guidance=0.0, guidance_steps=12, interpolation="lerp", pingpong=False, resize=False,
                  frames=0, pacing="strokes", cleanup_frames=4, seed=0)
    values.update(changes)
    return values


def same_bits(x, y):
    return x.dtype == y.dtype == torch.float32 and torch.equal(x.contiguous().view(torch.int32), y.contiguous().view(torch.int32))


# --- Transition --------------------------------------------------------------------------------


def test_guidance_over_is_offered_first_and_the_default_and_saved_lerp_slerp_still_run_as_before(progress):
    from latent_painter.nodes.transition import LatentPainterTransition
    from latent_painter.painter.engine.paint import PaintOptions
    from latent_painter.painter.engine.transition import Route, transition

    options, spec = LatentPainterTransition.INPUT_TYPES()["required"]["interpolation"]
    assert options == ["over", "lerp", "slerp"] and spec["default"] == "over"
    a, b = plan(1), plan(2)
    for how in ("over", "lerp", "slerp"):
        frames, _, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(),
                                  **settings(depth=0.0, guidance=1.0, interpolation=how, frames=12))
        engine = transition([a, b], painter(), Route(depth=0.0, guidance=1.0, interpolation=how),
                            PaintOptions(frames=12, pacing="strokes", cleanup_frames=4))
        assert same_bits(frames["samples"], engine.frames)
        whole = ((frames["samples"] == a.final) | (frames["samples"] == b.final)).all(1)
        assert bool(whole.all()) == (how == "over")  # over paints whole pixels of B over A; lerp/slerp blend


@pytest.mark.parametrize("route", [dict(depth=0.5), dict(depth=1.0, frames=9),
                                   dict(depth=0.0, guidance=1.0, interpolation="slerp", guidance_steps=5),
                                   dict(depth=0.0, guidance=1.0, interpolation="over", guidance_steps=5)])
def test_transition_ends_exactly_on_both_images(progress, route):
    a, b = plan(1), plan(2)
    frames, stroke_map, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings(**route))
    latents = frames["samples"]
    assert set(frames) == {"samples"} and latents.shape == (count, 4, 16, 16) and count > 3
    assert same_bits(latents[0], a.final)
    assert same_bits(latents[-1], b.final)
    assert stroke_map.shape == (count, 16, 16) and stroke_map.dtype == torch.float32
    assert float(stroke_map.min()) >= 0.0 and float(stroke_map.max()) == 1.0
    assert torch.all(stroke_map[1:] >= stroke_map[:-1])  # coverage keeps growing over the whole transition
    assert progress.totals == [PROGRESS_STEPS]
    done = [d for d, _ in progress.reports]
    assert done == sorted(done) and done[-1] == PROGRESS_STEPS


def test_frames_are_per_leg_and_joins_are_kept_once(progress):
    a, b, c, d = plan(1), plan(2), plan(3), plan(4)
    frames, stroke_map, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, plan_c=c, plan_d=d, painter=painter(),
                                    **settings(frames=10))
    latents = frames["samples"]
    assert count == 3 * 9 + 1 == latents.shape[0] == stroke_map.shape[0]
    for leg, stop in enumerate((a, b, c, d)):  # the chain passes exactly through every image
        assert same_bits(latents[9 * leg], stop.final)
    assert progress.totals == [3 * PROGRESS_STEPS]
    assert progress.reports[-1] == (3 * PROGRESS_STEPS, 3 * PROGRESS_STEPS)


def test_pingpong_comes_back_to_a(progress):
    a, b, c = plan(1), plan(2), plan(3)
    frames, _, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings(frames=8, pingpong=True))
    latents = frames["samples"]
    assert count == 2 * 7 + 1
    assert same_bits(latents[0], a.final) and same_bits(latents[7], b.final) and same_bits(latents[-1], a.final)

    frames, _, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, plan_c=c, painter=painter(),
                           **settings(frames=5, pingpong=True))
    latents = frames["samples"]
    assert count == 4 * 4 + 1  # A -> B -> C -> B -> A
    assert [same_bits(latents[4 * i], p.final) for i, p in enumerate((a, b, c, b, a))] == [True] * 5
    assert progress.totals[-1] == 4 * PROGRESS_STEPS


def test_checkpoints_sharing_a_latent_space_may_differ_in_everything_else(progress):
    a, b = plan(1, steps=6), plan(2, steps=9)  # e.g. two SD1.5 fine-tunes sampled with different step counts
    frames, _, count, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings(depth=1.0))
    assert same_bits(frames["samples"][-1], b.final)


@pytest.mark.parametrize("other, words", [(SDXL, "SDXL (4 channels, scale 0.13025, shift 0)"),
                                          (SD3, "SD3 (16 channels, scale 1.5305, shift 0.0609)")])
def test_foreign_latent_formats_are_refused_naming_both(progress, other, words):
    a = plan(1)
    b = plan(2, fmt=other, channels=other.channels)
    with pytest.raises(ValueError) as error:
        run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings())
    message = str(error.value)
    assert message.startswith("Transition: ")
    assert "SD15 (4 channels, scale 0.18215, shift 0)" in message and words in message
    assert "plan A" in message and "plan B" in message and "share a latent space" in message
    assert progress.reports == []  # refused before painting


def test_the_chain_names_the_foreign_plan(progress):
    with pytest.raises(ValueError, match=r"^Transition: plan A is in latent format SD15 .* but plan C is in SDXL"):
        run("LatentPainterTransition", plan_a=plan(1), plan_b=plan(2), plan_c=plan(3, fmt=SDXL), painter=painter(),
            **settings())


def test_sizes_must_match_unless_resized(progress):
    a, b = plan(1, size=16), plan(2, size=12)
    with pytest.raises(ValueError, match=r"^Transition: plan A is 16x16 latent pixels but plan B is 12x12.*resize"):
        run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings())
    frames, _, _, _ = run("LatentPainterTransition", plan_a=a, plan_b=b, painter=painter(), **settings(resize=True))
    assert frames["samples"].shape[1:] == (4, 16, 16)
    assert same_bits(frames["samples"][0], a.final)


@pytest.mark.parametrize("inputs, pattern", [
    (dict(plan_b="not a plan"), r"^Transition: plan_b: is not a plan; connect"),
    (dict(painter=()), r"^Transition: painter: is not a painter chain"),
    (dict(plan_d="later"), r"^Transition: plan_d: is connected but plan_c is not; connect"),
    (dict(frames=1), r"^Transition: frames must be 0 \(automatic\) or at least 2"),
    (dict(depth=1.5), r"^Transition: depth must be a number from 0 to 1, got 1\.5"),
    (dict(interpolation="cubic"), r"^Transition: interpolation 'cubic' is unknown; use over, lerp, slerp"),
    (dict(frames=20_000, pingpong=True, plan_c="C"), r"^Transition: frames \(20000 per leg x 4 legs\): 79997 frames is more"),
])  # fmt: skip
def test_bad_inputs_name_the_node_and_the_input(progress, inputs, pattern):
    values = dict(plan_a=plan(1), plan_b=plan(2), painter=painter(), **settings())
    if inputs.get("plan_c") == "C":
        inputs = {**inputs, "plan_c": plan(3)}
    values.update(inputs)
    with pytest.raises(ValueError, match=pattern):
        run("LatentPainterTransition", **values)
    assert progress.reports == []


def test_transition_interrupt_passes_through(monkeypatch):
    monkeypatch.setattr(host, "progress", Progress(interrupt_after=2))
    with pytest.raises(Interrupted):
        run("LatentPainterTransition", plan_a=plan(1), plan_b=plan(2), painter=painter(), **settings())


# --- Interpolate Latents (baseline) -------------------------------------------------------------


@pytest.mark.parametrize("how, reference", [("lerp", lerp_latents), ("slerp", slerp_latents)])
def test_interpolate_is_the_baseline_with_exact_ends(how, reference):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2, 4, 8, 8, generator=generator)  # batch item 0 is used
    b = torch.randn(3, 4, 8, 8, generator=generator)
    (frames,) = run("LatentPainterInterpolate", latent_a={"samples": a}, latent_b={"samples": b}, frames=7, interpolation=how)
    out = frames["samples"]
    assert set(frames) == {"samples"} and out.shape == (7, 4, 8, 8)
    assert same_bits(out[0], a[0]) and same_bits(out[-1], b[0])
    assert torch.equal(out, reference(a[0], b[0], 7))
    if how == "slerp":
        norms = out.flatten(1).norm(dim=1)
        assert float(norms[3]) > float(lerp_latents(a[0], b[0], 7)[3].norm())  # slerp does not sag mid-way


def test_interpolate_refuses_mismatched_latents():
    a = {"samples": torch.zeros(1, 4, 8, 8)}
    with pytest.raises(ValueError, match=r"^Interpolate Latents \(baseline\): latent_b: is \(16, 8, 8\) \[C,H,W\] but "
                                         r"latent_a is \(4, 8, 8\)"):
        run("LatentPainterInterpolate", latent_a=a, latent_b={"samples": torch.zeros(1, 16, 8, 8)}, frames=4,
            interpolation="lerp")
    with pytest.raises(ValueError, match=r"^Interpolate Latents \(baseline\): latent_a: this is a video latent"):
        run("LatentPainterInterpolate", latent_a={"samples": torch.zeros(1, 4, 2, 8, 8)}, latent_b=a, frames=4,
            interpolation="lerp")
    with pytest.raises(ValueError, match=r"^Interpolate Latents \(baseline\): frames: interpolated frames must be a whole number from 2 to"):
        run("LatentPainterInterpolate", latent_a=a, latent_b=a, frames=1, interpolation="lerp")
    with pytest.raises(ValueError, match=r"^Interpolate Latents \(baseline\): frames: 20000 frames of a 4x4096x4096"):
        big = {"samples": torch.zeros(1, 4, 1, 1).expand(1, 4, 4096, 4096)}
        run("LatentPainterInterpolate", latent_a=big, latent_b=big, frames=20_000, interpolation="lerp")


def test_change_pacing_without_a_vae_is_refused_before_painting(progress):
    with pytest.raises(ValueError, match=r"^Transition: vae: is not connected, and pacing 'change' needs it: .*"
                                         r"or set pacing to 'strokes'$"):
        run("LatentPainterTransition", plan_a=plan(1), plan_b=plan(2), painter=painter(), **settings(pacing="change"))
    assert progress.totals == []  # refused before any work started
