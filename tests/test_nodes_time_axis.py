"""Qwen-Image-style latents [B,16,1,H,W] through every node, without ComfyUI (the host's objects are
nodes_support.py's stand-ins: a Wan21-like latent format whose mean/std work on 5-D tensors only and
a Wan-like VAE that crashes on 4-D latents). A time axis of one is an image: painted, decoded and
handed on in the host's shape, the last frame the sampler's output bit for bit in its own shape.
A video (T > 1) is refused once, naming its shape and latent frames."""

from __future__ import annotations

import pytest
import torch

from nodes_support import FakeGuider, FakeModel, Previews, VideoVAE, WanLikeFormat, results, run
from test_nodes_run import folders  # noqa: F401 - a fixture

from latent_painter.nodes import host
from latent_painter.painter.engine.projection import project_rgb

SIGMAS = torch.tensor([14.6, 5.0, 2.0, 0.5, 0.0])
FORMAT = WanLikeFormat()
SIZE = 8
WAN5 = (1, 16, 2, 60, 104)  # Wan with length 5: (5 - 1) // 4 + 1 = 2 latent frames


def reports(steps=4, seed=0, batch=1):
    """(step, model-space x0 [B,16,1,H,W]) reports of a Qwen-Image-like run, rough to fine."""
    generator = torch.Generator().manual_seed(seed)
    final = torch.randn(batch, 16, 1, SIZE, SIZE, generator=generator)
    out = []
    for step in range(steps):
        blur = 2 * (steps - 1 - step) + 1
        flat = final[:, :, 0]
        smooth = torch.nn.functional.avg_pool2d(flat, blur, 1, blur // 2, count_include_pad=False)
        out.append((step, smooth[:, :, None].clone()))
    return out


def sampled(model, runs=None, latent=None):
    """One sampling run through the fake guider (what core KSampler does with a Wan21 model: the
    latent it samples is [B,16,1,H,W]); returns the LATENT-space result in the sampler's shape."""
    runs = runs or reports()
    latent = torch.zeros(1, 16, 1, SIZE, SIZE) if latent is None else latent
    result = FORMAT.process_out(runs[-1][1])
    return FakeGuider(model, runs, result).sample(torch.randn_like(latent), latent, "euler", SIGMAS,
                                                  callback=Previews())


def captured_plan():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    out = sampled(captured)
    (plan,) = run("LatentPainterGetPlan", model=captured, latent={"samples": out})
    return plan, out


def test_capture_and_get_plan_record_a_qwen_image_run():
    plain = sampled(FakeModel(FORMAT))
    plan, out = captured_plan()
    assert out.shape == (1, 16, 1, SIZE, SIZE) and torch.equal(out, plain)  # Capture changes nothing
    assert plan.originals.shape == (4, 16, SIZE, SIZE) and plan.latent_format.time_axis
    assert torch.equal(plan.final, out[0, :, 0])
    expected = torch.stack([FORMAT.process_out(x0)[0, :, 0] for _, x0 in reports()])
    assert torch.equal(plan.originals, expected)
    # the preview factors survive ComfyUI's 5-D-only mean/std: they act on LATENT space as ComfyUI's on x0
    fmt = plan.latent_format
    assert fmt.name == "WanLikeFormat" and fmt.rgb_factors is not None
    latents = torch.randn(2, 16, 1, 3, 3)
    comfy_rgb = project_rgb(FORMAT.process_in(latents)[:, :, 0], FORMAT.latent_rgb_factors,
                            FORMAT.latent_rgb_factors_bias)
    assert torch.allclose(project_rgb(latents[:, :, 0], fmt.rgb_factors, fmt.rgb_bias), comfy_rgb, atol=1e-5)


def test_the_pack_samplers_sample_an_image_latent_of_a_wan21_model(monkeypatch):
    model = FakeModel(FORMAT)

    def core_ksampler(model_in, *args):  # core adds the time axis (comfy.sample.fix_empty_latent_channels)
        latent = args[-2]
        return {"samples": sampled(model_in, latent=latent["samples"][:, :, None].repeat(1, 4, 1, 1, 1))}

    monkeypatch.setattr(host, "core_ksampler", core_ksampler)
    out, plan = run("LatentPainterSampler", model=model, seed=1, steps=4, cfg=7.0, sampler_name="euler",
                    scheduler="normal", positive=[], negative=[], latent_image={"samples": torch.zeros(1, 4, SIZE, SIZE)},
                    denoise=1.0)
    assert out["samples"].shape == (1, 16, 1, SIZE, SIZE) and plan.latent_format.time_axis
    assert torch.equal(plan.final, out["samples"][0, :, 0])
    # and a Qwen-style [1,16,1,H,W] input, as a Wan-VAE encode or EmptyHunyuanLatentVideo (length 1) gives
    monkeypatch.setattr(host, "core_ksampler", lambda model_in, *args: {"samples": sampled(model_in, latent=args[-2]["samples"])})
    out, plan = run("LatentPainterSampler", model=model, seed=1, steps=4, cfg=7.0, sampler_name="euler",
                    scheduler="normal", positive=[], negative=[],
                    latent_image={"samples": torch.zeros(1, 16, 1, SIZE, SIZE)}, denoise=1.0)
    assert plan.latent_format.time_axis and torch.equal(plan.final, out["samples"][0, :, 0])


@pytest.mark.parametrize("output_channels", [3, 4])  # 4: an RGBA VAE (Qwen-Image 2.1's)
def test_canvas_paint_and_core_vae_decode_take_the_host_shape(progress, output_channels):
    plan, out = captured_plan()
    vae = VideoVAE(output_channels=output_channels)
    (canvas,) = run("LatentPainterCanvas", vae=vae, plan=plan, kind="white", colour="#FFFFFF")
    assert canvas["samples"].shape == (1, 16, 1, SIZE, SIZE)
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=strokes(), frames=12, pacing="change",
                                       cleanup_frames=4, seed=0, canvas=canvas, vae=vae)
    latents = frames["samples"]
    assert latents.shape == (count, 16, 1, SIZE, SIZE) and stroke_map.shape == (count, SIZE, SIZE)
    assert torch.equal(latents[-1:], out)  # the sampler's output, bit for bit, in its own shape
    assert torch.equal(latents[0], canvas["samples"][0])
    assert all(len(shape) == 5 for shape in vae.decoded_shapes)  # every decode got the time axis
    # what core VAE Decode does with Paint's LATENT and the Wan VAE: decode 5-D, frames out
    decoded = vae.decode(latents)
    assert decoded.shape == (count, 1, SIZE * 8, SIZE * 8, output_channels)
    # without a canvas, the VAE makes the default one (the final image's mean colour)
    frames, *_ = run("LatentPainterPaint", plan=plan, painter=strokes(), frames=8, pacing="strokes",
                     cleanup_frames=2, seed=0, vae=vae)
    assert frames["samples"].shape[1:] == (16, 1, SIZE, SIZE) and torch.equal(frames["samples"][-1:], out)


def strokes():
    (chain,) = run("LatentPainterStrokes", preset="stroke8", brush="disk", channels="", move_cost=0.1,
                   switch_cost=0.0, motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    return chain


@pytest.mark.parametrize("output_channels", [3, 4])
def test_decode_frames_and_render_hand_a_video_vae_its_shape(progress, folders, monkeypatch, output_channels):
    plan, out = captured_plan()
    frames, stroke_map, count, maps = run("LatentPainterPaint", plan=plan, painter=strokes(), frames=9,
                                          pacing="strokes", cleanup_frames=2, seed=0)
    vae = VideoVAE(output_channels=output_channels)
    (images,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=4, white_canvas=True,
                        stroke_map_side_by_side=False, stroke_maps=maps, decode="full")
    assert images.shape == (count, SIZE * 8, SIZE * 8, 3) and 0 <= float(images.min()) <= float(images.max()) <= 1
    last = vae.decode(out)[0, 0]  # what VAE Decode shows for the sampler's output
    if output_channels == 4:  # RGBA onto white paper
        last = last[..., :3] * last[..., 3:] + (1 - last[..., 3:])
    assert torch.equal(images[-1], last)
    assert all(len(shape) == 5 for shape in vae.decoded_shapes)
    monkeypatch.setattr(host, "blocked_output", lambda message: ("BLOCKED", message))
    returned = run("LatentPainterRender", frames=frames, vae=vae, filename_prefix="lp/wan", format="webp", fps=8.0,
                   quality=90, hold_first=0, hold_last=0, pingpong=False, white_canvas=False,
                   stroke_map_side_by_side=False, chunk_size=3)
    assert returned["result"][1] == count


def test_plan_from_latents_transition_interpolate_and_plan_files(progress, folders):
    plan_a, out_a = captured_plan()
    x0 = torch.stack([x for _, x in reports(seed=1)])[:, 0]  # [T,16,1,H,W]: a LATENT batch of x0s
    (plan_b,) = run("LatentPainterPlanFromLatents", latents={"samples": x0})
    assert plan_b.latent_format.time_axis and plan_b.originals.shape == (4, 16, SIZE, SIZE)
    (plan_m,) = run("LatentPainterPlanFromLatents", latents={"samples": x0[:, :, 0]}, model=FakeModel(FORMAT))
    assert plan_m.latent_format.time_axis  # a Wan21 model's VAE takes a time axis: frames get one
    frames, *_ = run("LatentPainterTransition", plan_a=plan_a, plan_b=plan_b, painter=strokes(), depth=0.5,
                     guidance=0.0, guidance_steps=4, interpolation="lerp", pingpong=False, resize=False, frames=10,
                     pacing="strokes", cleanup_frames=2, seed=0)
    assert frames["samples"].shape[1:] == (16, 1, SIZE, SIZE)
    assert torch.equal(frames["samples"][0:1], out_a) and torch.equal(frames["samples"][-1], x0[-1])
    (between,) = run("LatentPainterInterpolate", latent_a={"samples": out_a}, latent_b={"samples": x0[-1:]},
                     frames=5, interpolation="slerp")
    assert between["samples"].shape == (5, 16, 1, SIZE, SIZE) and torch.equal(between["samples"][0:1], out_a)
    run("LatentPainterSavePlan", plan=plan_a, filename_prefix="lp/wan")
    (name,) = host.plan_files()
    (loaded,) = run("LatentPainterLoadPlan", plan=name)
    assert loaded.latent_format == plan_a.latent_format and loaded.latent_format.time_axis
    frames, *_ = run("LatentPainterPaint", plan=loaded, painter=strokes(), frames=6, pacing="strokes",
                     cleanup_frames=2, seed=0)
    assert torch.equal(frames["samples"][-1:], out_a)


def test_a_wan_video_of_two_latent_frames_is_refused_once_by_every_node(progress, monkeypatch):
    video = {"samples": torch.zeros(WAN5)}
    said = ("this is a video latent of shape (1, 16, 2, 60, 104) [B,C,T,H,W] with 2 latent frames; Latent Painter "
            "paints single-frame latents only")
    monkeypatch.setattr(host, "core_ksampler", lambda *a: pytest.fail("sampled a video"))
    refusals = {
        "Latent Painter Sampler: latent_image: ": lambda: run(
            "LatentPainterSampler", model=FakeModel(FORMAT), seed=0, steps=1, cfg=1.0, sampler_name="euler",
            scheduler="normal", positive=[], negative=[], latent_image=video),
        "Plan From Latents: latents: ": lambda: run("LatentPainterPlanFromLatents", latents=video),
        "Decode Frames: frames: ": lambda: run("LatentPainterDecodeFrames", vae=VideoVAE(), frames=video, chunk_size=4,
                                               white_canvas=False, stroke_map_side_by_side=False),
        "Interpolate Latents (baseline): latent_a: ": lambda: run("LatentPainterInterpolate", latent_a=video,
                                                                  latent_b=video, frames=3, interpolation="lerp"),
    }
    plan, _ = captured_plan()
    refusals["Paint: canvas: "] = lambda: run("LatentPainterPaint", plan=plan, painter=strokes(), frames=4,
                                             pacing="strokes", cleanup_frames=1, seed=0, canvas=video)
    for prefix, call in refusals.items():
        with pytest.raises(ValueError) as refused:
            call()
        assert str(refused.value).startswith(prefix + said), str(refused.value)

    # Capture around a sampler that samples the video: sampled untouched, nothing recorded, and
    # Get Plan says why, once, in the same words
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    runs = [(step, torch.randn(WAN5)) for step in range(2)]
    out = FakeGuider(captured, runs, torch.ones(WAN5)).sample(torch.zeros(WAN5), torch.zeros(WAN5), "euler",
                                                              SIGMAS[:3], callback=Previews())
    assert torch.equal(out, torch.ones(WAN5))
    with pytest.raises(ValueError) as refused:
        run("LatentPainterGetPlan", model=captured, latent={"samples": out})
    assert str(refused.value).startswith("Get Plan: latent: " + said)
    with pytest.raises(ValueError) as refused:  # the latent of another node: the record says the run was a video
        run("LatentPainterGetPlan", model=captured, latent={"samples": torch.zeros(1, 16, 1, 60, 104)})
    assert str(refused.value).startswith("Get Plan: model: no sampling has been recorded with this model (" + said)


def test_capture_names_a_latent_that_is_no_image():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    audio = torch.zeros(1, 64, 100)  # an audio model's [B,C,L]
    out = FakeGuider(captured, [(0, torch.randn(1, 64, 100))], torch.ones(1, 64, 100)).sample(
        torch.zeros_like(audio), audio, "euler", SIGMAS[:2], callback=Previews())
    assert torch.equal(out, torch.ones(1, 64, 100))
    with pytest.raises(ValueError, match=r"^Get Plan: model: no sampling has been recorded with this model \(it "
                                         r"sampled a latent of shape \(1, 64, 100\), not an image; "):
        run("LatentPainterGetPlan", model=captured, latent={"samples": torch.zeros(1, 16, 8, 8)})


def test_plan_from_image_paints_a_picture_in_a_video_vae_s_space(progress):
    """Plan From Image with a Wan-like VAE (a Qwen-Image user's picture): every step is encoded in the
    shape the VAE gives, and the painting ends on the picture's encoding in the host's shape."""
    vae = VideoVAE()
    generator = torch.Generator().manual_seed(5)
    picture = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 64, generator=generator), 5, 1, 2).permute(0, 2, 3, 1)
    (plan,) = run("LatentPainterPlanFromImage", steps=5, roughness=1.0, image=picture, vae=vae)
    encoded = vae.encode(picture)
    assert plan.latent_format.time_axis and torch.equal(plan.final, encoded[0, :, 0])
    frames, *_ = run("LatentPainterPaint", plan=plan, painter=strokes(), frames=8, pacing="strokes",
                     cleanup_frames=2, seed=0, vae=vae)
    assert frames["samples"].shape[1:] == (16, 1, SIZE, SIZE) and torch.equal(frames["samples"][-1:], encoded)
    # from the encoded latent alone (what VAE Encode gave), with the VAE for the look
    (again,) = run("LatentPainterPlanFromImage", steps=5, roughness=1.0, latent={"samples": encoded}, vae=vae)
    assert again.latent_format.time_axis and torch.equal(again.final, encoded[0, :, 0])
