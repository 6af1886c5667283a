"""Transitions inside a real ComfyUI (skipped without COMFYUI_PATH; see comfy_host.py).

Two checkpoints that share a latent format (checkpoint_a / checkpoint_b: SD1.5 layout, other random
weights) transition into each other down to an mp4 and an animated WEBP in one server prompt; a
second model family with another latent format (a tiny random SD3 loaded by the core UNETLoader,
conditioned through checkpoint A's CLIP) is refused with both formats named.
"""

from __future__ import annotations

import pytest
import torch
from comfy_host import HostError, webp_info

from latent_painter.painter.engine.plan import load_plan

pytestmark = pytest.mark.slow

STEPS = 3
LEG_FRAMES = 12
HOLD_LAST = 2


def _conditioning(loader: str, pos: str, neg: str, text: str) -> dict:
    return {
        pos: {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": [loader, 1]}},
        neg: {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": [loader, 1]}},
    }


def _sampler(model, pos: str, neg: str, seed: int, scheduler: str = "normal") -> dict:
    return {"class_type": "LatentPainterSampler", "inputs": {
        "model": model, "seed": seed, "steps": STEPS, "cfg": 5.0, "sampler_name": "euler", "scheduler": scheduler,
        "positive": [pos, 0], "negative": [neg, 0], "latent_image": ["7", 0], "denoise": 1.0}}


STROKES = {"class_type": "LatentPainterStrokes", "inputs": {
    "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0, "motivation": 0.0,
    "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}}


def _transition(plan_a, plan_b, frames: int = LEG_FRAMES) -> dict:
    return {"class_type": "LatentPainterTransition", "inputs": {
        "plan_a": plan_a, "plan_b": plan_b, "painter": ["10", 0], "depth": 0.5, "guidance": 0.25, "guidance_steps": 6,
        "interpolation": "slerp", "pingpong": False, "resize": False, "frames": frames, "pacing": "change",
        "cleanup_frames": 3, "seed": 0, "vae": ["1", 2]}}


def _saved_latent(comfy, history, node_id):
    from safetensors.torch import load_file

    (path,) = comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}}, "latents")
    return load_file(str(path))["latent_tensor"]


def _files(comfy, history, node_id):
    return comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}})


def test_transition_between_two_checkpoints_renders_video_and_webp(comfy, checkpoint_a, checkpoint_b):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_a}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_b}},
        **_conditioning("1", "3", "4", "a lighthouse at dawn"),
        **_conditioning("2", "5", "6", "a harbour at night"),
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": _sampler(["1", 0], "3", "4", seed=1),
        "9": _sampler(["2", 0], "5", "6", seed=2),
        "10": STROKES,
        "11": _transition(["8", 1], ["9", 1]),
        "12": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": ["1", 2], "frames": ["11", 0], "chunk_size": 8, "white_canvas": False,
            "stroke_map_side_by_side": False, "stroke_map": ["11", 1]}},
        "13": {"class_type": "LatentPainterAssembleFrames", "inputs": {
            "images": ["12", 0], "hold_first": 0, "hold_last": HOLD_LAST, "pingpong": False, "fps": 8.0,
            "duration_seconds": 0.0}},
        "14": {"class_type": "CreateVideo", "inputs": {"images": ["13", 0], "fps": ["13", 1]}},
        "15": {"class_type": "SaveVideo", "inputs": {
            "video": ["14", 0], "filename_prefix": "lp_transition/video", "format": "mp4", "codec": "h264"}},
        "16": {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["13", 0], "filename_prefix": "lp_transition/anim", "fps": ["13", 1], "lossless": False,
            "quality": 80, "method": "default"}},
        "17": {"class_type": "PreviewAny", "inputs": {"source": ["11", 2]}},
        "18": {"class_type": "SaveLatent", "inputs": {"samples": ["11", 0], "filename_prefix": "lp_transition/frames"}},
        "19": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": "lp_transition/a"}},
        "20": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": "lp_transition/b"}},
    }
    history = comfy.queue(prompt)

    assert history["outputs"]["17"]["text"] == [str(LEG_FRAMES)]
    frames, a, b = (_saved_latent(comfy, history, n) for n in ("18", "19", "20"))
    assert frames.shape == (LEG_FRAMES, 4, 8, 8)
    assert not torch.equal(a, b)  # two checkpoints, two images
    assert torch.equal(frames[0], a[0]) and torch.equal(frames[-1], b[0])  # starts on A, ends on B bit for bit

    total = LEG_FRAMES + HOLD_LAST
    (video,) = _files(comfy, history, "15")
    assert video.suffix == ".mp4" and video.is_file() and video.stat().st_size > 0
    assert comfy.video_frames(video) == total
    (webp,) = _files(comfy, history, "16")
    assert webp.suffix == ".webp"
    shown, width, height, duration = webp_info(webp)
    # 125 ms per frame at 8 fps; the encoder merges the held last frames into one longer frame
    assert (width, height, duration) == (64, 64, total * 125) and 2 <= shown <= total


def test_checkpoints_of_different_latent_formats_are_refused(comfy, checkpoint_a, sd3_model):
    """SD1.5 (SD15 format) and SD3 (SD3 format) plans cannot share a canvas: the Transition node
    stops the prompt with an error naming both formats."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_a}},
        "2": {"class_type": "UNETLoader", "inputs": {"unet_name": sd3_model, "weight_dtype": "default"}},
        **_conditioning("1", "3", "4", "a lighthouse at dawn"),
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": _sampler(["1", 0], "3", "4", seed=1),
        "9": _sampler(["2", 0], "3", "4", seed=2, scheduler="simple"),
        "21": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["9", 1], "filename_prefix": "lp_transition/sd3"}},
    }
    # The second family really samples in its own latent space, and the plan records it.
    history = comfy.queue(prompt)
    assert history["outputs"]["21"]["text"][0].startswith("saved lp_transition/sd3_00001_.safetensors [output]")
    plan = load_plan(comfy.output_dir / "lp_transition" / "sd3_00001_.safetensors")
    fmt = plan.latent_format
    assert (fmt.name, fmt.channels, fmt.scale, fmt.shift) == ("SD3", 16, 1.5305, 0.0609)
    assert plan.final.shape == (16, 8, 8) and plan.steps == STEPS

    del prompt["21"]
    prompt["10"] = STROKES
    prompt["11"] = _transition(["8", 1], ["9", 1])
    prompt["17"] = {"class_type": "PreviewAny", "inputs": {"source": ["11", 2]}}
    with pytest.raises(HostError) as error:
        comfy.queue(prompt)
    message = str(error.value)
    assert "node 11 (LatentPainterTransition)" in message
    assert ("Transition: plan A is in latent format SD15 (4 channels, scale 0.18215, shift 0) but plan B is in "
            "SD3 (16 channels, scale 1.5305, shift 0.0609); transitions need two checkpoints that share a latent "
            "space") in message, message
