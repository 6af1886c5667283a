"""One host test per latent family ComfyUI 0.8.0 ships, on the real server (skipped without
COMFYUI_PATH; see comfy_host.py).

Every family runs the same chain in one prompt: core KSampler with and without Capture (the two
latents must be equal bit for bit), Get Plan -> Save Plan, a white Canvas from the family's own VAE,
Paint, Decode Frames, Render (animated WEBP) and core VAE Decode of Paint's LATENT. The last painted
frame must be the sampler's latent bit for bit, in the sampler's own shape ([1,16,1,H,W] for the
Wan21 format), and every decoder must take the LATENT the pack hands it.

The models are tiny and random, built in the session, nothing downloaded (make_checkpoint.py; the
table of families, models, VAEs and empty-latent nodes is in the README, "One host test per latent
family"). Qwen-Image, Flux.2 and Chroma Radiance cannot be tiny through ComfyUI's detection (it fixes
24-48 heads of 128), so the test node LatentPainterTestTinyModel builds them from the config detection
gives with 1-2 heads and one block, matched to their supported_models entry by ComfyUI itself; text
features come from the test node LatentPainterTestConditioning (no multi-GB text encoder).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from comfy_host import HostError, webp_info
from PIL import Image

from latent_painter.painter.engine.plan import load_plan

pytestmark = pytest.mark.slow

SIZE = 64
STEPS = 3
FRAMES = 4
FPS = 8.0


def _conditioning(node: str, width: int, seed: int) -> dict:
    return {node: {"class_type": "LatentPainterTestConditioning",
                   "inputs": {"width": width, "tokens": 8, "seed": seed}}}


def _tiny(family: str, width: int = 256) -> dict:
    return {"model": {"class_type": "LatentPainterTestTinyModel", "inputs": {"family": family, "seed": 11}},
            **_conditioning("pos", width, 1), **_conditioning("neg", width, 2)}


def _vae(name: str) -> dict:
    return {"vae": {"class_type": "VAELoader", "inputs": {"vae_name": name}}}


def _empty(class_type: str, **extra) -> dict:
    return {"empty": {"class_type": class_type, "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1, **extra}}}


def _clip_text(ckpt: str) -> dict:
    return {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
            "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["ckpt", 1]}},
            "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}}}


def _ksampler(model: list, latent: list, seed: int = 7, scheduler: str = "simple", pos: str = "pos",
              neg: str = "neg") -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": model, "seed": seed, "steps": STEPS, "cfg": 1.0, "sampler_name": "euler", "scheduler": scheduler,
        "positive": [pos, 0], "negative": [neg, 0], "latent_image": latent, "denoise": 1.0}}


def _save_latent(source: list, prefix: str) -> dict:
    return {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": prefix}}


def _chain(head: dict, tag: str, scheduler: str = "simple", model=("model", 0), vae=("vae", 0)) -> dict:
    """The family's head (nodes "pos", "neg", "empty" and the given model and VAE) plus the chain under test."""
    model, vae = list(model), list(vae)
    out = f"lp_families/{tag}"
    prompt = dict(head)
    prompt.update({
        "plain": _ksampler(model, ["empty", 0], scheduler=scheduler),
        "capture": {"class_type": "LatentPainterCapture", "inputs": {"model": model}},
        "captured": _ksampler(["capture", 0], ["empty", 0], scheduler=scheduler),
        "plain_out": _save_latent(["plain", 0], f"{out}_plain"),
        "captured_out": _save_latent(["captured", 0], f"{out}_captured"),
        "plan": {"class_type": "LatentPainterGetPlan", "inputs": {"model": ["capture", 0], "latent": ["captured", 0],
                                                                 "batch_index": 0}},
        "save_plan": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["plan", 0], "filename_prefix": out}},
        "canvas": {"class_type": "LatentPainterCanvas", "inputs": {"vae": vae, "plan": ["plan", 0],
                                                                   "kind": "white", "colour": "#F4EFE4"}},
        "painter": {"class_type": "LatentPainterStrokes", "inputs": {
            "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
            "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}},
        "paint": {"class_type": "LatentPainterPaint", "inputs": {
            "plan": ["plan", 0], "painter": ["painter", 0], "frames": FRAMES, "pacing": "change", "cleanup_frames": 1,
            "seed": 0, "canvas": ["canvas", 0], "vae": vae}},
        "canvas_out": _save_latent(["canvas", 0], f"{out}_canvas"),
        "frames_out": _save_latent(["paint", 0], f"{out}_frames"),
        "decoded": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": vae, "frames": ["paint", 0], "chunk_size": 8, "white_canvas": True,
            "stroke_map_side_by_side": False, "stroke_maps": ["paint", 3]}},
        "decoded_out": {"class_type": "SaveImage", "inputs": {"images": ["decoded", 0],
                                                              "filename_prefix": f"{out}_decoded"}},
        "render": {"class_type": "LatentPainterRender", "inputs": {
            "frames": ["paint", 0], "vae": vae, "filename_prefix": f"{out}_render", "format": "webp",
            "fps": FPS, "quality": 80, "hold_first": 0, "hold_last": 0, "pingpong": False, "white_canvas": True,
            "stroke_map_side_by_side": False, "chunk_size": 4, "stroke_maps": ["paint", 3]}},
        "core_decode": {"class_type": "VAEDecode", "inputs": {"samples": ["paint", 0], "vae": vae}},
        "core_decode_out": {"class_type": "SaveImage", "inputs": {"images": ["core_decode", 0],
                                                                  "filename_prefix": f"{out}_core_decode"}},
        "final_decode": {"class_type": "VAEDecode", "inputs": {"samples": ["captured", 0], "vae": vae}},
        "final_decode_out": {"class_type": "SaveImage", "inputs": {"images": ["final_decode", 0],
                                                                   "filename_prefix": f"{out}_final_decode"}},
    })
    return prompt


def _latent(comfy, history, node_id) -> torch.Tensor:
    from safetensors.torch import load_file

    (path,) = comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}}, "latents")
    return load_file(str(path))["latent_tensor"]


def _images(comfy, history, node_id) -> list[np.ndarray]:
    paths = comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}}, "images")
    return [np.asarray(Image.open(path)) for path in paths]


def _check_family(comfy, prompt: dict, shape: tuple, fmt: str, channels: int, image_channels: int = 3):
    history = comfy.queue(prompt)
    plain, captured = _latent(comfy, history, "plain_out"), _latent(comfy, history, "captured_out")
    assert tuple(captured.shape) == shape, captured.shape
    assert torch.equal(captured, plain), "Capture changed the sampler's latent"
    print(f"\n{fmt}: KSampler latent {tuple(captured.shape)}; captured == uncaptured bit for bit: "
          f"{torch.equal(captured, plain)}")

    text = history["outputs"]["save_plan"]["text"][0]
    plan = load_plan(comfy.output_dir / text.split(" ", 2)[1])  # "saved lp_families/x_00001_.safetensors [output]: ..."
    assert plan.steps == STEPS, text
    assert plan.final.numel() == captured[0].numel() and torch.equal(plan.final.float().reshape(captured[0].shape),
                                                                     captured[0].float()), text
    fmt_seen = plan.latent_format
    assert (fmt_seen.name, fmt_seen.channels) == (fmt, channels), fmt_seen
    assert fmt_seen.time_axis == (len(shape) == 5), fmt_seen  # put back on every LATENT the pack outputs
    # ComfyUI 0.8.0 defines preview factors for all six formats (Wan21's on 5-D tensors, Flux.2's reshaped
    # from 32 rows to 128): the plan carries one row per channel of the LATENT
    assert fmt_seen.rgb_factors is not None and len(fmt_seen.rgb_factors) == channels, fmt_seen
    canvas = _latent(comfy, history, "canvas_out")
    assert canvas.shape == captured.shape, (canvas.shape, captured.shape)  # the shape the family's VAE decodes

    frames = _latent(comfy, history, "frames_out")
    assert frames.shape[1:] == captured.shape[1:], (frames.shape, captured.shape)  # the sampler's own shape
    assert frames.shape[0] >= FRAMES, frames.shape
    assert torch.equal(frames[-1], captured[0]), "the last painted frame is not the sampler's latent"
    print(f"{fmt}: Paint -> {tuple(frames.shape)}; last frame == KSampler latent bit for bit: "
          f"{torch.equal(frames[-1], captured[0])}")

    decoded = _images(comfy, history, "decoded_out")
    core = _images(comfy, history, "core_decode_out")
    (final,) = _images(comfy, history, "final_decode_out")
    assert len(decoded) == len(core) == frames.shape[0], (len(decoded), len(core), frames.shape)
    assert all(image.shape[:2] == (SIZE, SIZE) for image in decoded + core)
    assert all(image.shape[2] == 3 for image in decoded)  # an RGBA decode is composited onto the paper
    assert core[-1].shape == final.shape and final.shape[-1] == image_channels, (core[-1].shape, final.shape)
    # core VAE Decode of Paint's LATENT: its last image is the sampler's image (batched decode: up to one level)
    assert np.abs(core[-1].astype(int) - final.astype(int)).max() <= 1
    (webp,) = comfy.output_files({"outputs": {"render": history["outputs"]["render"]}})
    _, width, height, duration = webp_info(webp)
    assert (width, height, duration) == (SIZE, SIZE, round(1000 * frames.shape[0] / FPS)), (width, height, duration)
    print(f"{fmt}: Decode Frames {len(decoded)} images, Render {webp.name} {duration} ms, "
          f"core VAE Decode {len(core)} images of {core[-1].shape}")
    return history


def test_sd15_4_channels(comfy, checkpoint_a):
    prompt = _chain({**_clip_text(checkpoint_a), **_empty("EmptyLatentImage")}, "sd15", scheduler="normal",
                    model=("ckpt", 0), vae=("ckpt", 2))
    _check_family(comfy, prompt, (1, 4, 8, 8), "SD15", 4)


def test_sd3_16_channels(comfy, checkpoint_a, sd3_model, family_vaes):
    head = {**_clip_text(checkpoint_a), **_vae(family_vaes["kl_vae16"]), **_empty("EmptySD3LatentImage"),
            "model": {"class_type": "UNETLoader", "inputs": {"unet_name": sd3_model, "weight_dtype": "default"}}}
    _check_family(comfy, _chain(head, "sd3"), (1, 16, 8, 8), "SD3", 16)


def _wan_head(wan21_model, vae_name, length=1) -> dict:
    return {"model": {"class_type": "UNETLoader", "inputs": {"unet_name": wan21_model, "weight_dtype": "default"}},
            **_conditioning("pos", 4096, 1), **_conditioning("neg", 4096, 2), **_vae(vae_name),
            **_empty("EmptyHunyuanLatentVideo", length=length)}


def test_wan21_single_frame(comfy, wan21_model, family_vaes):
    """Wan 2.1 with length 1 (the Wan template's EmptyHunyuanLatentVideo): an image, [1,16,1,8,8]."""
    prompt = _chain(_wan_head(wan21_model, family_vaes["wan21_vae"]), "wan21")
    _check_family(comfy, prompt, (1, 16, 1, 8, 8), "Wan21", 16)


def _qwen_head(vae_name) -> dict:
    """Qwen-Image as its template wires it: EmptySD3LatentImage's 4-D latent, to which the sampler adds the
    time axis."""
    return {**_tiny("qwen_image"), **_vae(vae_name), **_empty("EmptySD3LatentImage")}


def test_qwen_image_through_capture_and_the_pack_sampler(comfy, family_vaes):
    prompt = _chain(_qwen_head(family_vaes["wan21_vae"]), "qwen_image")
    ours = dict(prompt["plain"]["inputs"])
    prompt["ours"] = {"class_type": "LatentPainterSampler", "inputs": ours}
    prompt["ours_out"] = _save_latent(["ours", 0], "lp_families/qwen_image_ours")
    prompt["ours_plan"] = {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["ours", 1],
                                                                            "filename_prefix": "lp_families/qwen_ours"}}
    history = _check_family(comfy, prompt, (1, 16, 1, 8, 8), "Wan21", 16)
    mine = _latent(comfy, history, "ours_out")
    assert mine.shape == (1, 16, 1, 8, 8) and torch.equal(mine, _latent(comfy, history, "plain_out"))
    text = history["outputs"]["ours_plan"]["text"][0]
    plan = load_plan(comfy.output_dir / text.split(" ", 2)[1])
    assert plan.steps == STEPS and torch.equal(plan.final.float().reshape(mine[0].shape), mine[0].float())
    print(f"Latent Painter Sampler, Qwen-style {tuple(mine.shape)}: equal to KSampler bit for bit; {text}")


def test_qwen_image_with_an_rgba_vae(comfy, family_vaes):
    """Qwen-Image 2.1's VAE decodes to RGBA: a Wan 2.1 VAE with 4 image channels."""
    _check_family(comfy, _chain(_qwen_head(family_vaes["wan21_vae_rgba"]), "qwen_rgba"), (1, 16, 1, 8, 8), "Wan21", 16,
                  image_channels=4)


def test_flux2_128_channels(comfy, family_vaes):
    head = {**_tiny("flux2"), **_vae(family_vaes["flux2_vae"]), **_empty("EmptyFlux2LatentImage")}
    _check_family(comfy, _chain(head, "flux2"), (1, 128, SIZE // 16, SIZE // 16), "Flux2", 128)


def test_chroma_radiance_pixel_space(comfy):
    head = {**_tiny("chroma_radiance"), "vae": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
            **_empty("EmptyChromaRadianceLatentImage")}
    _check_family(comfy, _chain(head, "chroma_radiance"), (1, 3, SIZE, SIZE), "ChromaRadiance", 3)


SHAPE_2_FRAMES = r"1\s*[x×,]\s*16\s*[x×,]\s*2\s*[x×,]\s*8\s*[x×,]\s*8"


@pytest.mark.parametrize("where", ["sampler", "capture"])
def test_wan_video_of_two_latent_frames_is_refused_once_and_clearly(comfy, wan21_model, family_vaes, where):
    """length 5 -> T = 2 latent frames: the first pack node that sees it refuses, naming the shape and T."""
    prompt = _wan_head(wan21_model, family_vaes["wan21_vae"], length=5)
    if where == "sampler":
        prompt["ours"] = {"class_type": "LatentPainterSampler",
                          "inputs": dict(_ksampler(["model", 0], ["empty", 0], seed=8)["inputs"])}
        prompt["ours_out"] = _save_latent(["ours", 0], "lp_families/wan_video_ours")
        node_type = "LatentPainterSampler"
    else:
        prompt["capture"] = {"class_type": "LatentPainterCapture", "inputs": {"model": ["model", 0]}}
        prompt["captured"] = _ksampler(["capture", 0], ["empty", 0], seed=9)
        prompt["plain"] = _ksampler(["model", 0], ["empty", 0], seed=9)
        prompt["captured_out"] = _save_latent(["captured", 0], "lp_families/wan_video_captured")
        prompt["plain_out"] = _save_latent(["plain", 0], "lp_families/wan_video_plain")
        history = comfy.queue(prompt)  # a video sampled with the captured model is left as it was
        captured = _latent(comfy, history, "captured_out")
        assert captured.shape == (1, 16, 2, 8, 8) and torch.equal(captured, _latent(comfy, history, "plain_out"))
        prompt["plan"] = {"class_type": "LatentPainterGetPlan", "inputs": {"model": ["capture", 0],
                                                                          "latent": ["captured", 0], "batch_index": 0}}
        prompt["save_plan"] = {"class_type": "LatentPainterSavePlan",
                               "inputs": {"plan": ["plan", 0], "filename_prefix": "lp_families/wan_video"}}
        node_type = "LatentPainterGetPlan"
    with pytest.raises(HostError) as error:
        comfy.queue(prompt)
    message = str(error.value)
    print(f"\nWan, length 5, {where}: {message.splitlines()[1] if len(message.splitlines()) > 1 else message}")
    assert f"({node_type}):" in message, message
    assert re.search(SHAPE_2_FRAMES, message), message
    assert re.search(r"\b2 latent frames\b", message), message


def test_wan21_plans_saved_loaded_transitioned_and_rebuilt(comfy, wan21_model, family_vaes):
    """Plans of [1,16,1,H,W] latents elsewhere in the pack: Save Plan / Load Plan, a Transition from a Wan
    image to a Qwen-Image one (two models, one latent space) and Plan From Latents, each LATENT in the
    sampler's own shape and ending on its sampler's latent bit for bit."""
    painter = {"class_type": "LatentPainterAction", "inputs": {
        "kind": "fade", "frames": 2, "channels": "", "motivation": 0.0, "block": 2.0, "fraction": 1.0, "schedules": 0}}
    paint = {"painter": ["painter", 0], "frames": 0, "pacing": "strokes", "cleanup_frames": 1, "seed": 0}
    prompt = {**_wan_head(wan21_model, family_vaes["wan21_vae"]), "painter": painter,
              "qwen": {"class_type": "LatentPainterTestTinyModel", "inputs": {"family": "qwen_image", "seed": 11}},
              **_conditioning("qwen_pos", 256, 1), **_conditioning("qwen_neg", 256, 2),
              "qwen_empty": {"class_type": "EmptySD3LatentImage", "inputs": {"width": SIZE, "height": SIZE,
                                                                             "batch_size": 1}}}
    for tag, model, empty, pos, neg in (("wan", "model", "empty", "pos", "neg"),
                                        ("qwen", "qwen", "qwen_empty", "qwen_pos", "qwen_neg")):
        prompt[f"{tag}_capture"] = {"class_type": "LatentPainterCapture", "inputs": {"model": [model, 0]}}
        prompt[f"{tag}_sampled"] = _ksampler([f"{tag}_capture", 0], [empty, 0], seed=21, pos=pos, neg=neg)
        prompt[f"{tag}_out"] = _save_latent([f"{tag}_sampled", 0], f"lp_families/plans_{tag}")
        prompt[f"{tag}_plan"] = {"class_type": "LatentPainterGetPlan", "inputs": {
            "model": [f"{tag}_capture", 0], "latent": [f"{tag}_sampled", 0], "batch_index": 0}}
    prompt.update({
        "save_plan": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["wan_plan", 0],
                                                                       "filename_prefix": "lp_families/wan_saved"}},
        "transition": {"class_type": "LatentPainterTransition", "inputs": {
            "plan_a": ["wan_plan", 0], "plan_b": ["qwen_plan", 0], "painter": ["painter", 0], "depth": 0.5,
            "guidance": 0.0, "guidance_steps": 12, "interpolation": "lerp", "pingpong": False, "resize": False,
            "frames": 6, "pacing": "strokes", "cleanup_frames": 1, "seed": 0}},
        "transition_out": _save_latent(["transition", 0], "lp_families/transition"),
        "transition_decode": {"class_type": "VAEDecode", "inputs": {"samples": ["transition", 0], "vae": ["vae", 0]}},
        "transition_images": {"class_type": "SaveImage", "inputs": {"images": ["transition_decode", 0],
                                                                    "filename_prefix": "lp_families/transition"}},
        "rebuilt": {"class_type": "LatentPainterPlanFromLatents", "inputs": {
            "latents": ["transition", 0], "final": ["qwen_sampled", 0], "model": ["qwen", 0]}},
        "rebuilt_paint": {"class_type": "LatentPainterPaint", "inputs": {"plan": ["rebuilt", 0], **paint}},
        "rebuilt_out": _save_latent(["rebuilt_paint", 0], "lp_families/rebuilt"),
    })
    history = comfy.queue(prompt)
    wan, qwen = _latent(comfy, history, "wan_out"), _latent(comfy, history, "qwen_out")
    assert wan.shape == qwen.shape == (1, 16, 1, 8, 8)
    for node in ("transition_out", "rebuilt_out"):
        frames = _latent(comfy, history, node)
        assert frames.shape[1:] == (16, 1, 8, 8) and torch.equal(frames[-1], qwen[0]), (node, frames.shape)
    assert len(_images(comfy, history, "transition_images")) == _latent(comfy, history, "transition_out").shape[0]

    name = history["outputs"]["save_plan"]["text"][0].split(" ", 2)[1]  # "lp_families/wan_saved_00001_.safetensors"
    loaded = {"loaded": {"class_type": "LatentPainterLoadPlan", "inputs": {"plan": name + " [output]"}},
              "painter": painter,
              "paint": {"class_type": "LatentPainterPaint", "inputs": {"plan": ["loaded", 0], **paint}},
              "out": _save_latent(["paint", 0], "lp_families/loaded")}
    frames = _latent(comfy, comfy.queue(loaded), "out")
    assert frames.shape[1:] == (16, 1, 8, 8) and torch.equal(frames[-1], wan[0]), frames.shape
    print(f"\nWan21 plans: Load Plan -> Paint {tuple(frames.shape)}, Transition and Plan From Latents end on "
          "their sampler's latent bit for bit")
