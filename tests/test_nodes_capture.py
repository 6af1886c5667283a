"""Capture, Get Plan and the two samplers built on them, without ComfyUI.

The host's objects are the thin stand-ins of nodes_support.py: a ModelPatcher's wrapper list, a
CFGGuider that runs OUTER_SAMPLE wrappers around its sampling as ComfyUI 0.8.0 does, the preview
callback. tests/host/test_capture_host.py runs the same nodes in a real ComfyUI."""

from __future__ import annotations

import pytest
import torch

from nodes_support import FakeFormat, FakeGuider, FakeModel, Interrupted, Previews, run

from latent_painter.nodes import host
from latent_painter.painter.engine.projection import project_rgb

SIGMAS = torch.tensor([14.6, 5.0, 2.0, 0.5, 0.0])
FORMAT = FakeFormat()


def reports_for(batch=2, steps=4, seed=0, size=8, repeat=()):
    """(step, model-space x0) reports of a run; the steps in ``repeat`` are reported twice."""
    generator = torch.Generator().manual_seed(seed)
    reports = []
    for step in range(steps):
        for _ in range(2 if step in repeat else 1):
            reports.append((step, torch.randn(batch, 4, size, size, generator=generator)))
    return reports


def sample(model, reports, latent=None, callback=None, **kwargs):
    """One sampling run with ``model`` through the fake guider; returns its result (LATENT space)."""
    batch, _, size, _ = reports[-1][1].shape if reports else (1, 4, 8, 8)
    latent = torch.zeros(batch, 4, size, size) if latent is None else latent
    result = FORMAT.process_out(reports[-1][1]) if reports else latent.clone()
    return FakeGuider(model, reports, result, **kwargs).sample(torch.randn_like(latent), latent, "euler", SIGMAS,
                                                               callback=callback)


def get_plan(model, samples, **kwargs):
    (plan,) = run("LatentPainterGetPlan", model=model, latent={"samples": samples}, **kwargs)
    return plan


def test_capture_records_every_step_and_changes_nothing():
    model = FakeModel(FORMAT)
    (captured,) = run("LatentPainterCapture", model=model)
    assert captured is not model and model.wrappers == {}  # the loader's model is untouched
    reports = reports_for(repeat=(1,))
    plain_previews, captured_previews = Previews(), Previews()
    plain = sample(model, reports, callback=plain_previews)
    result = sample(captured, reports, callback=captured_previews)
    assert torch.equal(result, plain)
    # previews and the progress bar see exactly what they see without Capture
    assert len(captured_previews.calls) == len(plain_previews.calls) == 5
    for (s1, x0_1, x1, t1), (s2, x0_2, x2, t2) in zip(captured_previews.calls, plain_previews.calls):
        assert (s1, t1) == (s2, t2) and torch.equal(x0_1, x0_2) and torch.equal(x1, x2)

    plan = get_plan(captured, result, batch_index=1)
    latest = dict(reports)  # the last report of a step wins
    assert torch.equal(plan.originals, torch.stack([FORMAT.process_out(latest[step][1]) for step in range(4)]))
    assert torch.equal(plan.final, result[1]) and torch.equal(plan.sigmas, SIGMAS[:4])
    fmt = plan.latent_format
    assert (fmt.name, fmt.channels, fmt.scale, fmt.shift) == ("FakeFormat", 4, 0.5, 0.1)
    # the recorded RGB factors act on LATENT space exactly as ComfyUI's act on the model space
    latents = torch.randn(3, 4, 5, 5)
    comfy_rgb = project_rgb(FORMAT.process_in(latents), FakeFormat.latent_rgb_factors, FakeFormat.latent_rgb_factors_bias)
    assert torch.allclose(project_rgb(latents, fmt.rgb_factors, fmt.rgb_bias), comfy_rgb, atol=1e-6)


def test_a_sampler_without_preview_callback_is_recorded_too():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    result = sample(captured, reports_for(batch=1), callback=None)
    assert get_plan(captured, result).steps == 4


def test_clones_of_the_captured_model_record_into_the_same_store():
    """A LoRA or another model patch after Capture clones the model: its runs are still recorded."""
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    patched = captured.clone()
    result = sample(patched, reports_for(batch=1))
    assert get_plan(captured, result).steps == 4 and get_plan(patched, result).steps == 4


def test_passes_that_continue_one_another_join_across_two_captured_models():
    """KSampler Advanced base (leftover noise, model A) then refiner (model B, no added noise)."""
    (base,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    (refiner,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    base_reports, refiner_reports = reports_for(steps=3, seed=1), reports_for(steps=2, seed=2)
    leftover = sample(base, base_reports)
    result = sample(refiner, refiner_reports, latent=leftover.clone())
    plan = get_plan(refiner, result, batch_index=1)
    expected = [FORMAT.process_out(x0[1]) for _, x0 in base_reports + refiner_reports]
    assert plan.steps == 5 and torch.equal(plan.originals, torch.stack(expected))
    assert torch.equal(plan.final, result[1])
    assert get_plan(base, leftover).steps == 3  # the base pass alone, for its own output
    # a second pass at another size (hires fix) gives its own plan
    upscaled = torch.nn.functional.interpolate(result, scale_factor=2.0)
    hires = sample(refiner, reports_for(steps=2, size=16, seed=3), latent=upscaled)
    assert get_plan(refiner, hires).steps == 2


def test_a_model_reused_across_queue_runs_keeps_only_the_current_ones(monkeypatch):
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    wrapper = captured.wrappers["outer_sample"]["latent_painter_capture"][0]
    monkeypatch.setattr(host, "executing_node", lambda: ("prompt 1", "5"))
    first = sample(captured, reports_for(batch=1, seed=1))
    for prompt in range(2, 12):
        monkeypatch.setattr(host, "executing_node", lambda: (f"prompt {prompt}", "5"))
        latest = sample(captured, reports_for(batch=1, seed=prompt))
        assert len(wrapper.store.runs) == 1  # no growth, however many queue runs
    assert wrapper.store.nbytes == 4 * 4 * 8 * 8 * 4
    assert get_plan(captured, latest).steps == 4
    with pytest.raises(ValueError, match=r"matches none of the 1 sampling runs recorded with this model "
                                         r"\(node 5: 4 steps, 1x4x8x8\)"):
        get_plan(captured, first)


def test_cancel_mid_run_leaves_no_record():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    with pytest.raises(Interrupted):  # passed through untouched
        sample(captured, reports_for(batch=1), interrupt_at=2)
    with pytest.raises(ValueError, match=r"^Get Plan: model: no sampling has been recorded with this model;"):
        get_plan(captured, torch.zeros(1, 4, 8, 8))


def test_multi_part_latents_are_sampled_untouched_and_not_recorded():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    guider = FakeGuider(captured, reports_for(batch=1), torch.ones(1, 4, 8, 8))
    wrapper = captured.wrappers["outer_sample"]["latent_painter_capture"][0]
    latent = torch.zeros(1, 4, 8, 8)
    previews = Previews()
    out = wrapper(lambda *a, **k: guider.outer_sample(*a, **k), torch.zeros_like(latent), latent, "euler", SIGMAS,
                  None, previews, False, 0, latent_shapes=[(1, 4, 8, 8), (1, 4, 4, 4)])
    assert torch.equal(out, torch.ones(1, 4, 8, 8)) and len(previews.calls) == 4
    with pytest.raises(ValueError, match=r"no sampling has been recorded with this model \(it sampled a multi-part "
                                         r"latent; .*image latents \[B,C,H,W\] \(or \[B,C,1,H,W\]\) only\)"):
        get_plan(captured, out)


# --- Get Plan's errors name the node, the input and the fix ------------------------------------


def test_get_plan_errors():
    model = FakeModel(FORMAT)
    with pytest.raises(ValueError, match=r"^Get Plan: model: is not a captured model; put a Capture node between "
                                         r"the model loader and the sampler"):
        get_plan(model, torch.zeros(1, 4, 8, 8))
    (captured,) = run("LatentPainterCapture", model=model)
    with pytest.raises(ValueError, match=r"^Get Plan: model: no sampling has been recorded with this model; connect "
                                         r"'model' to the Capture output that feeds the sampler, and 'latent' to that "
                                         r"sampler's output"):
        get_plan(captured, torch.zeros(1, 4, 8, 8))
    result = sample(captured, reports_for(batch=2))
    with pytest.raises(ValueError, match=r"^Get Plan: latent: matches none of the 1 sampling runs recorded with this "
                                         r"model \(a sampler: 4 steps, 2x4x8x8\); connect the output latent of a "
                                         r"sampler that samples with this captured model, unchanged"):
        get_plan(captured, result * 0.5)
    with pytest.raises(ValueError, match=r"^Get Plan: batch_index: 2 is outside the batch of 2 \(0\.\.1\); pick an "
                                         r"image of the batch"):
        get_plan(captured, result, batch_index=2)
    with pytest.raises(ValueError, match=r"^Get Plan: latent: this is a video latent of shape \(1, 4, 2, 8, 8\) "
                                         r"\[B,C,T,H,W\] with 2 latent frames; Latent Painter paints single-frame "
                                         r"latents only"):
        get_plan(captured, torch.zeros(1, 4, 2, 8, 8))
    with pytest.raises(ValueError, match=r"^Capture: model: is not a MODEL"):
        run("LatentPainterCapture", model="not a model")


# --- the two samplers: the capture patch plus the core node's own function ----------------------


def test_sampler_is_the_core_ksampler_on_a_captured_model(monkeypatch):
    model = FakeModel(FORMAT)
    reports = reports_for(batch=2, repeat=(2,))
    calls = []

    def core_ksampler(model_in, *args):
        calls.append((model_in, args))
        latent = args[-2]
        out = dict(latent)
        out["samples"] = sample(model_in, reports, latent=latent["samples"], callback=Previews())
        return out

    monkeypatch.setattr(host, "core_ksampler", core_ksampler)
    latent = {"samples": torch.zeros(2, 4, 8, 8), "batch_index": [7, 8]}
    out, plan = run("LatentPainterSampler", model=model, seed=1, steps=4, cfg=7.0, sampler_name="euler",
                    scheduler="normal", positive=[], negative=[], latent_image=latent, denoise=0.8)
    ((model_in, args),) = calls
    assert model_in is not model and "latent_painter_capture" in model_in.wrappers["outer_sample"]
    assert model.wrappers == {} and args == (1, 4, 7.0, "euler", "normal", [], [], latent, 0.8)
    assert out["batch_index"] == [7, 8]  # the core node's LATENT, untouched
    latest = dict(reports)
    assert torch.equal(plan.originals, torch.stack([FORMAT.process_out(latest[s][0]) for s in range(4)]))
    assert torch.equal(plan.final, out["samples"][0]) and torch.equal(plan.targets[-1], out["samples"][0])


def test_sampler_custom_is_sampler_custom_advanced_with_a_captured_guider(monkeypatch):
    model = FakeModel(FORMAT)
    reports = reports_for(batch=1, steps=3)

    class Guider(FakeGuider):
        cfg = 6.0

    guider = Guider(model, reports, FORMAT.process_out(reports[-1][1]))
    used = []

    def core_custom(noise, guider_in, sampler, sigmas, latent):
        used.append(guider_in)
        return {"samples": guider_in.sample(noise, latent["samples"], sampler, sigmas, callback=Previews())}

    monkeypatch.setattr(host, "core_sampler_custom_advanced", core_custom)
    out, plan = run("LatentPainterSamplerCustom", noise=torch.zeros(1, 4, 8, 8), guider=guider, sampler="euler",
                    sigmas=SIGMAS[1:], latent_image={"samples": torch.zeros(1, 4, 8, 8)})
    (copy,) = used
    assert copy is not guider and guider.model_patcher is model and model.wrappers == {}  # the input guider untouched
    assert isinstance(copy, Guider) and copy.cfg == 6.0 and "latent_painter_capture" in copy.model_patcher.wrappers[
        "outer_sample"]
    assert plan.steps == 3 and torch.equal(plan.sigmas, SIGMAS[1:4]) and torch.equal(plan.final, out["samples"][0])


def test_samplers_refuse_what_gives_no_plan(monkeypatch):
    monkeypatch.setattr(host, "core_ksampler", lambda *a: pytest.fail("sampled what gives no plan"))
    inputs = dict(seed=0, steps=1, cfg=1.0, sampler_name="euler", scheduler="normal", positive=[], negative=[])
    model = FakeModel(FORMAT)
    with pytest.raises(ValueError, match=r"^Latent Painter Sampler: latent_image: this is a video latent of shape "
                                         r"\(1, 16, 3, 8, 8\) \[B,C,T,H,W\] with 3 latent frames"):
        run("LatentPainterSampler", model=model, latent_image={"samples": torch.zeros(1, 16, 3, 8, 8)}, **inputs)
    with pytest.raises(ValueError, match=r"^Latent Painter Sampler: denoise: is 0, .*raise it above 0"):
        run("LatentPainterSampler", model=model, latent_image={"samples": torch.zeros(1, 4, 8, 8)}, denoise=0.0,
            **inputs)

    def never_calls_back(model_in, *args):
        return {"samples": sample(model_in, [], latent=torch.randn(1, 4, 8, 8))}

    monkeypatch.setattr(host, "core_ksampler", never_calls_back)
    with pytest.raises(ValueError, match=r"^Latent Painter Sampler: the sampler ran no steps"):
        run("LatentPainterSampler", model=model, latent_image={"samples": torch.zeros(1, 4, 8, 8)}, **inputs)


# --- Get Plan's end_latent: the plan lands on the user's own latent ------------------------------


def test_get_plan_with_an_end_latent_ends_exactly_on_it():
    (captured,) = run("LatentPainterCapture", model=FakeModel(FORMAT))
    result = sample(captured, reports_for(batch=2, steps=4))
    plain = get_plan(captured, result, batch_index=1)
    ends = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    landed = get_plan(captured, result, batch_index=1, end_latent={"samples": ends})
    assert torch.equal(landed.final, ends[1]) and torch.equal(landed.targets[-1], ends[1])
    assert landed.steps == plain.steps and torch.equal(landed.sigmas, plain.sigmas)
    assert landed.latent_format == plain.latent_format
    # the difference is spread along the plan, not added at the end
    first_moved = (landed.targets[0] - plain.targets[0]).abs().mean()
    assert first_moved > 0.1 * (ends[1] - plain.final).abs().mean()
    one = get_plan(captured, result, batch_index=1, end_latent={"samples": ends[:1]})  # a single latent serves any index
    assert torch.equal(one.final, ends[0])
    with pytest.raises(ValueError, match=r"^Get Plan: end_latent: the end latent is 4x16x16 but the plan is 4x8x8; "
                                         r"encode the image at the size that was sampled"):
        get_plan(captured, result, end_latent={"samples": torch.zeros(1, 4, 16, 16)})
    with pytest.raises(ValueError, match=r"^Get Plan: end_latent: expected a LATENT"):
        get_plan(captured, result, end_latent=torch.zeros(1, 4, 8, 8))
