"""Capture + Get Plan inside a real ComfyUI (skipped without COMFYUI_PATH; see comfy_host.py).

Every case samples twice in one prompt, with and without Capture, and checks the two latents bit
for bit; then it takes the plan with Get Plan, paints it and checks that the last painted frame
is the sampler's latent (the connected batch item) bit for bit. Random-weight checkpoints, 64 px
(8x8 latents) and 3-4 steps keep each prompt at seconds to a minute on a CPU.
"""

from __future__ import annotations

import pytest
import torch
from comfy_host import HostError

from latent_painter.painter.engine.plan import load_plan

pytestmark = pytest.mark.slow

SIZE = 64
PAINTER = {"class_type": "LatentPainterAction", "inputs": {
    "kind": "fade", "frames": 2, "channels": "", "motivation": 0.0, "block": 2.0, "fraction": 1.0, "schedules": 0}}


def _saved(comfy, history, node_id):
    from safetensors.torch import load_file

    (path,) = comfy.output_files({"outputs": {node_id: history["outputs"][node_id]}}, "latents")
    return load_file(str(path))["latent_tensor"]


def _model_block(ckpt: str, loader="1", pos="2", neg="3", text="a lighthouse at dusk") -> dict:
    return {
        loader: {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        pos: {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": [loader, 1]}},
        neg: {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": [loader, 1]}},
    }


def _empty(node="4", batch=1, size=SIZE) -> dict:
    return {node: {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}}}


def _ksampler(model, latent, sampler_name="euler", scheduler="normal", seed=7, steps=3, denoise=1.0, pos="2", neg="3"):
    return {"class_type": "KSampler", "inputs": {
        "model": model, "seed": seed, "steps": steps, "cfg": 6.0, "sampler_name": sampler_name, "scheduler": scheduler,
        "positive": [pos, 0], "negative": [neg, 0], "latent_image": latent, "denoise": denoise}}


def _paint_checks(prompt: dict, tag: str, captured_model: list, latent: list, batch_index: int = 0) -> dict:
    """Adds Get Plan -> Save Plan, Paint -> Save Latent (frames) for one sampled latent; returns the ids."""
    ids = {k: f"{tag}{k}" for k in ("plan", "save_plan", "painter", "paint", "frames")}
    prompt[ids["plan"]] = {"class_type": "LatentPainterGetPlan",
                           "inputs": {"model": captured_model, "latent": latent, "batch_index": batch_index}}
    prompt[ids["save_plan"]] = {"class_type": "LatentPainterSavePlan",
                                "inputs": {"plan": [ids["plan"], 0], "filename_prefix": f"lp_capture/{tag}"}}
    prompt[ids["painter"]] = PAINTER
    prompt[ids["paint"]] = {"class_type": "LatentPainterPaint", "inputs": {
        "plan": [ids["plan"], 0], "painter": [ids["painter"], 0], "frames": 0, "pacing": "strokes",
        "cleanup_frames": 2, "seed": 0}}
    prompt[ids["frames"]] = {"class_type": "SaveLatent",
                             "inputs": {"samples": [ids["paint"], 0], "filename_prefix": f"lp_capture/{tag}_frames"}}
    return ids


def _save(prompt: dict, node_id: str, source: list, prefix: str) -> None:
    prompt[node_id] = {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": f"lp_capture/{prefix}"}}


def _plan_file(comfy, history, ids):
    text = history["outputs"][ids["save_plan"]]["text"][0]
    name = text.split(" ", 2)[1]  # "saved lp_capture/x_00001_.safetensors [output]: ..."
    return load_plan(comfy.output_dir / name)


def _check_painting(comfy, history, ids, latent: torch.Tensor, batch_index: int, steps: int):
    plan = _plan_file(comfy, history, ids)
    assert plan.steps == steps, (plan.steps, steps)
    assert torch.equal(plan.final, latent[batch_index].float())
    frames = _saved(comfy, history, ids["frames"])
    assert frames.shape[1:] == latent.shape[1:] and frames.shape[0] > steps
    assert torch.equal(frames[-1], latent[batch_index])  # painted to the end, bit for bit
    return plan


KSAMPLER_CASES = [  # (tag, sampler, scheduler, denoise, batch, batch_index)
    ("euler", "euler", "normal", 1.0, 1, 0),
    ("dpmpp2m", "dpmpp_2m", "karras", 1.0, 1, 0),
    ("ancestral", "euler_ancestral", "normal", 1.0, 1, 0),
    ("sde", "dpmpp_2m_sde", "karras", 1.0, 1, 0),
    ("img2img", "euler", "normal", 0.6, 1, 0),
    ("batch", "dpmpp_2m", "normal", 1.0, 2, 1),
]
STEPS = 3


@pytest.fixture(scope="module")
def ksampler_runs(comfy, checkpoint_a):
    """All core KSampler cases in one prompt: each sampled with the loader's model and with the
    captured one, then Get Plan, Paint."""
    prompt = {**_model_block(checkpoint_a), **_empty("4"), **_empty("5", batch=2),
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["1", 0]}},
              # the img2img input: an image no captured run made (another seed, the plain model)
              "6": _ksampler(["1", 0], ["4", 0], seed=99, steps=2)}
    ids = {}
    for n, (tag, sampler_name, scheduler, denoise, batch, batch_index) in enumerate(KSAMPLER_CASES):
        latent = ["6", 0] if denoise < 1 else ["5", 0] if batch == 2 else ["4", 0]
        plain, captured = f"{tag}_plain", f"{tag}_captured"
        prompt[plain] = _ksampler(["1", 0], latent, sampler_name, scheduler, seed=10 + n, denoise=denoise)
        prompt[captured] = _ksampler(["9", 0], latent, sampler_name, scheduler, seed=10 + n, denoise=denoise)
        _save(prompt, f"{tag}_plain_out", [plain, 0], f"{tag}_plain")
        _save(prompt, f"{tag}_captured_out", [captured, 0], f"{tag}_captured")
        ids[tag] = _paint_checks(prompt, tag, ["9", 0], [captured, 0], batch_index)
    return comfy.queue(prompt), ids


@pytest.mark.parametrize("case", KSAMPLER_CASES, ids=[c[0] for c in KSAMPLER_CASES])
def test_core_ksampler_with_capture(comfy, ksampler_runs, case):
    history, ids = ksampler_runs
    tag, _, _, _, batch, batch_index = case
    plain, captured = _saved(comfy, history, f"{tag}_plain_out"), _saved(comfy, history, f"{tag}_captured_out")
    assert captured.shape == (batch, 4, SIZE // 8, SIZE // 8)
    assert torch.equal(captured, plain)  # Capture changes nothing about the result
    plan = _check_painting(comfy, history, ids[tag], captured, batch_index, STEPS)
    assert plan.latent_format.name == "SD15" and plan.sigmas.shape == (STEPS,)
    assert torch.all(plan.sigmas[:-1] > plan.sigmas[1:])


def test_ksampler_advanced_base_then_refiner_of_two_checkpoints_is_one_plan(comfy, checkpoint_a, checkpoint_b):
    """SDXL-style base -> refiner: base (checkpoint A) stops at step 2 of 4 with the leftover noise,
    the refiner (checkpoint B, same family) goes on without adding noise. Each model is captured;
    Get Plan on the refiner's output joins both passes."""
    prompt = {**_model_block(checkpoint_a), **_model_block(checkpoint_b, "11", "12", "13"), **_empty("4"),
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["1", 0]}},
              "19": {"class_type": "LatentPainterCapture", "inputs": {"model": ["11", 0]}}}

    def advanced(model, latent, base: bool, pos, neg):
        return {"class_type": "KSamplerAdvanced", "inputs": {
            "model": model, "add_noise": "enable" if base else "disable", "noise_seed": 5, "steps": 4, "cfg": 6.0,
            "sampler_name": "euler", "scheduler": "normal", "positive": [pos, 0], "negative": [neg, 0],
            "latent_image": latent, "start_at_step": 0 if base else 2, "end_at_step": 2 if base else 10000,
            "return_with_leftover_noise": "enable" if base else "disable"}}

    for tag, base_model, refiner_model in (("plain", ["1", 0], ["11", 0]), ("captured", ["9", 0], ["19", 0])):
        prompt[f"base_{tag}"] = advanced(base_model, ["4", 0], True, "2", "3")
        prompt[f"refiner_{tag}"] = advanced(refiner_model, [f"base_{tag}", 0], False, "12", "13")
        _save(prompt, f"base_{tag}_out", [f"base_{tag}", 0], f"base_{tag}")
        _save(prompt, f"refiner_{tag}_out", [f"refiner_{tag}", 0], f"refiner_{tag}")
    ids = _paint_checks(prompt, "refined", ["19", 0], ["refiner_captured", 0])
    base_ids = _paint_checks(prompt, "base", ["9", 0], ["base_captured", 0])
    history = comfy.queue(prompt)

    for stage in ("base", "refiner"):
        assert torch.equal(_saved(comfy, history, f"{stage}_captured_out"), _saved(comfy, history, f"{stage}_plain_out"))
    refined = _saved(comfy, history, "refiner_captured_out")
    plan = _check_painting(comfy, history, ids, refined, 0, 4)  # 2 base steps + 2 refiner steps
    assert torch.all(plan.sigmas[:-1] > plan.sigmas[1:])  # one schedule, continued
    base_plan = _check_painting(comfy, history, base_ids, _saved(comfy, history, "base_captured_out"), 0, 2)
    assert torch.equal(plan.originals[:2], base_plan.originals)


def test_sampler_custom_advanced_with_capture(comfy, checkpoint_a):
    prompt = {**_model_block(checkpoint_a), **_empty("4"),
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["1", 0]}},
              "20": {"class_type": "RandomNoise", "inputs": {"noise_seed": 123}},
              "22": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
              "23": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": STEPS,
                                                                 "denoise": 1.0}}}
    for tag, model in (("plain", ["1", 0]), ("captured", ["9", 0])):
        prompt[f"guider_{tag}"] = {"class_type": "CFGGuider", "inputs": {
            "model": model, "positive": ["2", 0], "negative": ["3", 0], "cfg": 6.0}}
        prompt[f"custom_{tag}"] = {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["20", 0], "guider": [f"guider_{tag}", 0], "sampler": ["22", 0], "sigmas": ["23", 0],
            "latent_image": ["4", 0]}}
        _save(prompt, f"custom_{tag}_out", [f"custom_{tag}", 0], f"custom_{tag}")
    ids = _paint_checks(prompt, "custom", ["9", 0], ["custom_captured", 0])
    history = comfy.queue(prompt)
    captured = _saved(comfy, history, "custom_captured_out")
    assert torch.equal(captured, _saved(comfy, history, "custom_plain_out"))
    _check_painting(comfy, history, ids, captured, 0, STEPS)


def test_sampler_custom_with_capture_and_its_denoised_output(comfy, checkpoint_a):
    prompt = {**_model_block(checkpoint_a), **_empty("4", batch=2),
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["1", 0]}},
              "22": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}},
              "23": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": STEPS,
                                                                 "denoise": 1.0}}}
    for tag, model in (("plain", ["1", 0]), ("captured", ["9", 0])):
        prompt[f"custom_{tag}"] = {"class_type": "SamplerCustom", "inputs": {
            "model": model, "add_noise": True, "noise_seed": 321, "cfg": 6.0, "positive": ["2", 0],
            "negative": ["3", 0], "sampler": ["22", 0], "sigmas": ["23", 0], "latent_image": ["4", 0]}}
        _save(prompt, f"custom_{tag}_out", [f"custom_{tag}", 0], f"sc_{tag}")
    _save(prompt, "denoised_out", ["custom_captured", 1], "sc_denoised")
    ids = _paint_checks(prompt, "sc", ["9", 0], ["custom_captured", 0], batch_index=1)
    denoised_ids = _paint_checks(prompt, "scd", ["9", 0], ["custom_captured", 1], batch_index=1)
    history = comfy.queue(prompt)
    captured = _saved(comfy, history, "custom_captured_out")
    assert torch.equal(captured, _saved(comfy, history, "custom_plain_out"))
    _check_painting(comfy, history, ids, captured, 1, STEPS)
    # the denoised_output is the run's last prediction: Get Plan finds the same run from it
    _check_painting(comfy, history, denoised_ids, _saved(comfy, history, "denoised_out"), 1, STEPS)


def test_sd3_flow_model_with_capture(comfy, checkpoint_a, sd3_model):
    """A second model family: a tiny random SD3 (rectified flow, 16-channel SD3 latent format)."""
    prompt = {**_model_block(checkpoint_a), **_empty("4"),
              "30": {"class_type": "UNETLoader", "inputs": {"unet_name": sd3_model, "weight_dtype": "default"}},
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["30", 0]}}}
    for tag, model in (("plain", ["30", 0]), ("captured", ["9", 0])):
        prompt[f"sd3_{tag}"] = _ksampler(model, ["4", 0], "euler", "simple", seed=3)
        _save(prompt, f"sd3_{tag}_out", [f"sd3_{tag}", 0], f"sd3_{tag}")
    ids = _paint_checks(prompt, "sd3", ["9", 0], ["sd3_captured", 0])
    history = comfy.queue(prompt)
    captured = _saved(comfy, history, "sd3_captured_out")
    assert captured.shape == (1, 16, SIZE // 8, SIZE // 8)
    assert torch.equal(captured, _saved(comfy, history, "sd3_plain_out"))
    plan = _check_painting(comfy, history, ids, captured, 0, STEPS)
    fmt = plan.latent_format
    assert (fmt.name, fmt.channels, fmt.scale, fmt.shift) == ("SD3", 16, 1.5305, 0.0609)


# --- Get Plan's errors for the three wrong wirings, as the user sees them -----------------------


def _get_plan_prompt(checkpoint_a, tag: str, **over) -> dict:
    """Loader -> RescaleCFG (a multiplier unique to the test, so its Capture is not a cached one
    from another test) -> Capture; a KSampler on the captured model; Get Plan -> Preview Any."""
    unique = {"no_sampling": 0.71, "no_match": 0.72, "batch": 0.73}[tag]
    prompt = {**_model_block(checkpoint_a), **_empty("4"), **_empty("5", batch=2),
              "8": {"class_type": "RescaleCFG", "inputs": {"model": ["1", 0], "multiplier": unique}},
              "9": {"class_type": "LatentPainterCapture", "inputs": {"model": ["8", 0]}},
              "10": _ksampler(["9", 0], ["5", 0], steps=2),
              # the plain model's second pass on node 10's output: not recorded (and it makes node 10 run first)
              "11": _ksampler(["8", 0], ["10", 0], steps=2, denoise=0.5),
              "12": {"class_type": "LatentPainterGetPlan", "inputs": {"model": ["9", 0], "latent": ["10", 0],
                                                                      "batch_index": 0}},
              "13": {"class_type": "PreviewAny", "inputs": {"source": ["12", 0]}}}
    prompt["12"]["inputs"].update(over)
    return prompt


def test_get_plan_without_sampling_with_the_captured_model(comfy, checkpoint_a):
    prompt = _get_plan_prompt(checkpoint_a, "no_sampling", latent=["11", 0])  # the sampler uses the plain model
    del prompt["10"]
    prompt["11"] = _ksampler(["8", 0], ["4", 0], steps=2)
    with pytest.raises(HostError) as error:
        comfy.queue(prompt)
    assert ("node 12 (LatentPainterGetPlan): ValueError: Get Plan: model: no sampling has been recorded with this "
            "model; connect 'model' to the Capture output that feeds the sampler, and 'latent' to that sampler's "
            "output") in str(error.value), str(error.value)


def test_get_plan_with_a_latent_no_recorded_run_made(comfy, checkpoint_a):
    prompt = _get_plan_prompt(checkpoint_a, "no_match", latent=["11", 0])  # the other sampler's latent
    with pytest.raises(HostError) as error:
        comfy.queue(prompt)
    assert ("Get Plan: latent: matches none of the 1 sampling runs recorded with this model (node 10: 2 steps, "
            "2x4x8x8); connect the output latent of a sampler that samples with this captured model") in str(
        error.value), str(error.value)


def test_get_plan_with_a_batch_index_out_of_range(comfy, checkpoint_a):
    prompt = _get_plan_prompt(checkpoint_a, "batch", batch_index=2)
    with pytest.raises(HostError) as error:
        comfy.queue(prompt)
    assert "Get Plan: batch_index: 2 is outside the batch of 2 (0..1); pick an image of the batch" in str(
        error.value), str(error.value)
