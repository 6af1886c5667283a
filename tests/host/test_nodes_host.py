"""The nodes inside a real ComfyUI (skipped without COMFYUI_PATH; see tests/host/comfy_host.py).

The samplers' latent must be bit for bit the core node's for the same inputs, the recorded plan
must be what the callback saw, and the whole chain must run in a server prompt down to an
animated WEBP. The server and checkpoints are the session's (tests/host/conftest.py).
Run: COMFYUI_PATH=/path/to/ComfyUI python -m pytest tests/host -q
"""

from __future__ import annotations

import os

import pytest
import torch
from comfy_host import HostError, txt2img_prompt

from latent_painter.painter.engine.plan import load_plan

pytestmark = pytest.mark.slow

STEPS = 4


def _latent(comfy, history, node_id):
    from safetensors.torch import load_file

    (path,) = comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}}, "latents")
    return load_file(str(path))["latent_tensor"]


def _plans(comfy, prefix):
    folder = comfy.output_dir / os.path.dirname(prefix)
    return sorted(folder.glob(os.path.basename(prefix) + "_*_.safetensors"))


@pytest.fixture(scope="module")
def ksampler_run(comfy, checkpoint_a):
    """Core KSampler and Latent Painter Sampler side by side on the same inputs (batch of 2)."""
    prompt = txt2img_prompt(checkpoint_a, seed=11, steps=STEPS, width=64, height=64)
    prompt["4"]["inputs"]["batch_size"] = 2
    del prompt["6"], prompt["7"]
    core = prompt["5"]["inputs"]
    prompt["10"] = {"class_type": "LatentPainterSampler", "inputs": dict(core)}
    prompt["11"] = {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "lp_nodes/core"}}
    prompt["12"] = {"class_type": "SaveLatent", "inputs": {"samples": ["10", 0], "filename_prefix": "lp_nodes/ours"}}
    prompt["13"] = {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["10", 1], "filename_prefix": "lp_nodes/ksampler"}}
    return comfy.queue(prompt)


def test_sampler_matches_ksampler_and_records_the_plan(comfy, ksampler_run):
    history = ksampler_run
    ours, theirs = _latent(comfy, history, "12"), _latent(comfy, history, "11")
    assert ours.shape == (2, 4, 8, 8) and torch.equal(ours, theirs)
    text = history["outputs"]["13"]["text"][0]
    assert text.startswith("saved lp_nodes/ksampler_00001_.safetensors [output]: 4 steps, 4x8x8, SD15")
    (path,) = _plans(comfy, "lp_nodes/ksampler")
    plan = load_plan(path)
    assert plan.steps == STEPS and torch.equal(plan.final, ours[0].float())
    assert torch.allclose(plan.originals[-1], plan.final, atol=1e-5)  # euler's last x0 is the result
    assert plan.sigmas.shape == (STEPS,) and torch.all(plan.sigmas[:-1] > plan.sigmas[1:])
    fmt = plan.latent_format
    assert (fmt.name, fmt.channels, fmt.scale, fmt.shift) == ("SD15", 4, 0.18215, 0.0)
    assert fmt.rgb_factors is not None and len(fmt.rgb_factors) == 4


def test_sampler_matches_ksampler_img2img_with_noise_mask_and_batch_index(comfy, checkpoint_a):
    """denoise < 1 on a non-empty latent, with a noise mask (SetLatentNoiseMask) and a batch_index
    (LatentFromBatch): the noise, the mask blending and the shortened schedule are the core's."""
    prompt = txt2img_prompt(checkpoint_a, seed=21, steps=1)
    prompt["4"]["inputs"]["batch_size"] = 2
    del prompt["6"], prompt["7"]
    prompt.update({
        "30": {"class_type": "LatentFromBatch", "inputs": {"samples": ["5", 0], "batch_index": 1, "length": 1}},
        "31": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}},
        "32": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 40}},
        "33": {"class_type": "MaskComposite", "inputs": {"destination": ["31", 0], "source": ["32", 0], "x": 16, "y": 8,
                                                          "operation": "add"}},
        "34": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["30", 0], "mask": ["33", 0]}},
    })
    steps = 3
    img2img = {"model": ["1", 0], "seed": 77, "steps": steps, "cfg": 5.0, "sampler_name": "dpmpp_2m",
               "scheduler": "karras", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["34", 0],
               "denoise": 0.6}
    prompt["35"] = {"class_type": "KSampler", "inputs": dict(img2img)}
    prompt["36"] = {"class_type": "LatentPainterSampler", "inputs": dict(img2img)}
    prompt["37"] = {"class_type": "SaveLatent", "inputs": {"samples": ["35", 0], "filename_prefix": "lp_nodes/core_masked"}}
    prompt["38"] = {"class_type": "SaveLatent", "inputs": {"samples": ["36", 0], "filename_prefix": "lp_nodes/ours_masked"}}
    prompt["39"] = {"class_type": "SaveLatent", "inputs": {"samples": ["30", 0], "filename_prefix": "lp_nodes/masked_input"}}
    prompt["40"] = {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["36", 1], "filename_prefix": "lp_nodes/masked"}}
    history = comfy.queue(prompt)

    ours, theirs, start = (_latent(comfy, history, n) for n in ("38", "37", "39"))
    # equal to the core's also means the same noise: batch_index [1] draws the seed's second noise, not its first
    assert ours.shape == (1, 4, 8, 8) and torch.equal(ours, theirs)
    # the mask took effect: outside its box (latent rows 1..5, columns 2..5) the input is kept (up to the
    # rounding of the model's process_in/out scaling), inside it was resampled
    assert torch.allclose(ours[:, :, 0], start[:, :, 0], atol=1e-5)
    assert torch.allclose(ours[:, :, :, 6:], start[:, :, :, 6:], atol=1e-5)
    assert (ours[:, :, 1:6, 2:6] - start[:, :, 1:6, 2:6]).abs().mean() > 0.05
    (path,) = _plans(comfy, "lp_nodes/masked")
    plan = load_plan(path)
    assert plan.steps == steps and torch.equal(plan.final, ours[0].float())
    assert plan.sigmas.shape == (steps,) and torch.all(plan.sigmas[:-1] > plan.sigmas[1:])


def test_sampler_custom_matches_sampler_custom_advanced(comfy, checkpoint_a):
    prompt = txt2img_prompt(checkpoint_a, seed=5, steps=STEPS)
    del prompt["5"], prompt["6"], prompt["7"]
    prompt.update({
        "20": {"class_type": "RandomNoise", "inputs": {"noise_seed": 123}},
        "21": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "cfg": 6.0}},
        "22": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
        "23": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": STEPS, "denoise": 1.0}},
    })
    sampling = {"noise": ["20", 0], "guider": ["21", 0], "sampler": ["22", 0], "sigmas": ["23", 0], "latent_image": ["4", 0]}
    prompt["24"] = {"class_type": "SamplerCustomAdvanced", "inputs": dict(sampling)}
    prompt["25"] = {"class_type": "LatentPainterSamplerCustom", "inputs": dict(sampling)}
    prompt["26"] = {"class_type": "SaveLatent", "inputs": {"samples": ["24", 0], "filename_prefix": "lp_nodes/core_custom"}}
    prompt["27"] = {"class_type": "SaveLatent", "inputs": {"samples": ["25", 0], "filename_prefix": "lp_nodes/ours_custom"}}
    prompt["28"] = {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["25", 1], "filename_prefix": "lp_nodes/custom"}}
    history = comfy.queue(prompt)

    ours, theirs = _latent(comfy, history, "27"), _latent(comfy, history, "26")
    assert torch.equal(ours, theirs)
    (path,) = _plans(comfy, "lp_nodes/custom")
    plan = load_plan(path)
    assert plan.steps == STEPS and torch.equal(plan.targets[-1], ours[0].float())
    assert plan.sigmas[0] > plan.sigmas[-1] > 0


def test_plan_to_animation_in_the_host(comfy, checkpoint_a, ksampler_run):
    name = "lp_nodes/ksampler_00001_.safetensors [output]"
    listed = comfy.object_info("LatentPainterLoadPlan")["input"]["required"]["plan"][0]
    assert name in listed
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_a}},
        "2": {"class_type": "LatentPainterLoadPlan", "inputs": {"plan": name}},
        "3": {"class_type": "LatentPainterStrokes", "inputs": {
            "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
            "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 2}},
        "4": {"class_type": "LatentPainterAction", "inputs": {
            "kind": "fade", "frames": 3, "channels": "0-3", "motivation": 0.0, "block": 2.0, "fraction": 1.0,
            "schedules": 0, "previous": ["3", 0]}},
        "5": {"class_type": "LatentPainterPaint", "inputs": {
            "plan": ["2", 0], "painter": ["4", 0], "frames": 0, "pacing": "change", "cleanup_frames": 3, "seed": 0,
            "vae": ["1", 2]}},
        "6": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": ["1", 2], "frames": ["5", 0], "chunk_size": 8, "white_canvas": True,
            "stroke_map_side_by_side": True, "stroke_map": ["5", 1]}},
        "7": {"class_type": "LatentPainterAssembleFrames", "inputs": {
            "images": ["6", 0], "hold_first": 1, "hold_last": 4, "pingpong": False, "fps": 12.0, "duration_seconds": 0.0}},
        "8": {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["7", 0], "filename_prefix": "lp_nodes/anim", "fps": ["7", 1], "lossless": False,
            "quality": 80, "method": "default"}},
    }
    history = comfy.queue(prompt)
    files = comfy.output_files({"outputs": {"8": history["outputs"]["8"]}})
    assert len(files) == 1 and files[0].suffix == ".webp" and files[0].stat().st_size > 0


def test_bad_input_reaches_the_user_with_the_node_name(comfy, ksampler_run):
    prompt = {
        "2": {"class_type": "LatentPainterLoadPlan", "inputs": {"plan": "lp_nodes/ksampler_00001_.safetensors [output]"}},
        "3": {"class_type": "LatentPainterStrokes", "inputs": {
            "preset": "stroke8", "brush": "disk", "channels": "9", "move_cost": 0.1, "switch_cost": 0.0,
            "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}},
        "5": {"class_type": "LatentPainterPaint", "inputs": {
            "plan": ["2", 0], "painter": ["3", 0], "frames": 0, "pacing": "strokes", "cleanup_frames": 3, "seed": 0}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 2]}},
    }
    with pytest.raises(HostError, match=r"Paint: stage 1 of the chain \(Strokes\): channels \[9\] are outside this 4-channel latent; use indices 0\.\.3"):
        comfy.queue(prompt)
    with pytest.raises(HostError, match=r"Load Plan: plan: no plan file"):
        comfy.queue({**prompt, "2": {"class_type": "LatentPainterLoadPlan", "inputs": {"plan": "nothing.safetensors"}}})


def test_canvas_default_canvas_and_coloured_stroke_maps_in_the_host(comfy, checkpoint_a, ksampler_run):
    """The Canvas node encodes through a real ComfyUI VAE (its encode and spacial_compression_encode), Paint makes
    its default canvas with it, and the STROKE_MAPS socket carries the maps to Decode Frames."""
    painter = {"class_type": "LatentPainterStrokes", "inputs": {
        "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
        "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}}
    paint = {"plan": ["2", 0], "painter": ["3", 0], "frames": 8, "pacing": "strokes", "cleanup_frames": 2, "seed": 0}
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint_a}},
        "2": {"class_type": "LatentPainterLoadPlan", "inputs": {"plan": "lp_nodes/ksampler_00001_.safetensors [output]"}},
        "3": painter,
        "4": {"class_type": "LatentPainterCanvas", "inputs": {"vae": ["1", 2], "plan": ["2", 0], "kind": "colour",
                                                              "colour": "#F4EFE4"}},
        "5": {"class_type": "LatentPainterPaint", "inputs": {**paint, "canvas": ["4", 0]}},
        "6": {"class_type": "LatentPainterPaint", "inputs": {**paint, "vae": ["1", 2]}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": "lp_nodes/canvas"}},
        "8": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": "lp_nodes/on_canvas"}},
        "9": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 0], "filename_prefix": "lp_nodes/default_canvas"}},
        "10": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": ["1", 2], "frames": ["5", 0], "chunk_size": 4, "white_canvas": True,
            "stroke_map_side_by_side": True, "stroke_maps": ["5", 3]}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "lp_nodes/coloured_map"}},
    }
    history = comfy.queue(prompt)
    canvas = _latent(comfy, history, "7")
    on_canvas, on_default = _latent(comfy, history, "8"), _latent(comfy, history, "9")
    assert canvas.shape == (1, 4, 8, 8) and torch.isfinite(canvas).all()
    assert on_canvas.shape[0] == 8 and torch.equal(on_canvas[0], canvas[0])
    assert on_default.shape[0] == 8 and not torch.equal(on_default[0], torch.zeros_like(on_default[0]))
    assert torch.equal(on_canvas[-1], on_default[-1])  # both end on the plan's final latent
    images = comfy.output_files({"outputs": {"11": history["outputs"]["11"]}})
    assert len(images) == 8
    import numpy
    from PIL import Image

    with Image.open(images[4]) as picture:
        assert picture.size == (128, 64)  # the painting and its stroke map side by side
        rgb = torch.from_numpy(numpy.asarray(picture.convert("RGB"))).to(torch.int32)
    stroke_map = rgb[:, 64:]
    assert int((stroke_map.amax(-1) - stroke_map.amin(-1)).max()) > 100  # coloured, not grey
