"""Recording sampling runs and picking the plan of the run that made a latent (painter/engine/capture.py).

No host: runs are fed the way the capture wrapper feeds them (x0 reports in LATENT space, often
through one reused buffer, then the result)."""

from __future__ import annotations

import pytest
import torch

from latent_painter.painter.engine.capture import Run, RunOrigin, RunStore, newest_continued, plan_of_run
from latent_painter.painter.engine.plan import LatentFormat, PlanError

SD15 = LatentFormat("SD15", 4, 0.18215)
SDXL = LatentFormat("SDXL", 4, 0.13025)


def sampled(store, start, steps=4, seed=0, latent_format=SD15, origin=RunOrigin(), previous="auto", reports=None):
    """A run through ``store``: ``steps`` x0 reports through one reused buffer, then a result."""
    generator = torch.Generator().manual_seed(seed)
    sigmas = torch.linspace(10.0, 0.0, steps + 1)
    if previous == "auto":
        previous = newest_continued(start, store.runs, latent_format)
    run = store.begin(start, sigmas, latent_format, origin, previous)
    buffer = torch.empty_like(start)
    originals = []
    for step in reports if reports is not None else range(steps):
        x0 = torch.randn(start.shape, generator=generator)
        buffer.copy_(x0)
        run.record(step, buffer)
        originals.append((step, x0))
    buffer.fill_(float("nan"))  # the sampler reuses its buffer: nothing of it may leak into the record
    result = originals[-1][1] + 1e-3 if originals else start.clone()
    run.finish(result)
    return run, result, originals


def test_a_run_keeps_every_step_in_order_and_the_last_report_of_a_step():
    store = RunStore()
    start = torch.zeros(2, 4, 6, 5)
    run, result, reports = sampled(store, start, steps=4, reports=[0, 1, 1, 3, 2])
    latest = {step: x0 for step, x0 in reports}
    plan = plan_of_run(run, result, 1)
    assert torch.equal(plan.originals, torch.stack([latest[step][1] for step in range(4)]))
    assert torch.equal(plan.sigmas, run.sigmas[:4]) and torch.equal(plan.final, result[1])
    assert plan.latent_format == SD15 and run.steps == 4


def test_a_plan_of_one_run_is_a_view_of_the_record_of_its_own_size():
    """A 1,000-step run (at 256 px here; benchmarks/bench_capture.py --memory measures 1024 px):
    x0 is stored once per step, float32, on the CPU, and the plan shares that memory."""
    steps, shape = 1000, (1, 4, 32, 32)
    run = Run(torch.zeros(shape), torch.linspace(14.6, 0.0, steps + 1), SD15)
    x0 = torch.empty(shape)
    for step in range(steps):
        run.record(step, x0.fill_(step))
    run.finish(x0)
    plan = plan_of_run(run, x0, 0)
    plan_bytes = plan.originals.numel() * plan.originals.element_size()
    assert plan_bytes == steps * 4 * 32 * 32 * 4 and run.nbytes == plan_bytes
    assert plan.originals.untyped_storage().data_ptr() == run.buffer.untyped_storage().data_ptr()
    assert plan.originals.dtype == torch.float32 and plan.originals.device.type == "cpu"
    assert plan.originals[:, 0, 0, 0].tolist() == [float(step) for step in range(steps)]


def test_a_batch_item_is_contiguous_in_the_record():
    run, result, _ = sampled(RunStore(), torch.zeros(3, 4, 4, 4), steps=3)
    plan = plan_of_run(run, result, 2)
    assert plan.originals.is_contiguous() and plan.originals.shape == (3, 4, 4, 4)


def test_a_sampler_reporting_more_steps_than_its_schedule_grows_the_record():
    run, result, reports = sampled(RunStore(), torch.zeros(1, 4, 4, 4), steps=2, reports=range(7))
    plan = plan_of_run(run, result, 0)
    assert plan.steps == 7 and torch.equal(plan.originals[-1], reports[-1][1][0])
    assert plan.sigmas.numel() == 0  # no sigma is known for steps past the schedule


def test_the_run_that_made_the_latent_is_found_by_result_or_by_last_prediction():
    store = RunStore()
    a, result_a, reports_a = sampled(store, torch.zeros(1, 4, 4, 4), seed=1)
    b, result_b, _ = sampled(store, torch.zeros(1, 4, 4, 4), seed=2)
    assert store.find(result_a) == (a, "result") and store.find(result_b) == (b, "result")
    assert store.find(reports_a[-1][1]) == (a, "denoised")  # SamplerCustom's denoised_output
    assert store.find(result_a + 1e-6) is None  # bit for bit, nothing close
    assert store.find(result_a[:, :, :2]) is None
    again, _, _ = sampled(store, torch.zeros(1, 4, 4, 4), seed=1)  # the same run twice: the newest wins
    assert store.find(result_a) == (again, "result")


def test_a_pass_starting_from_a_result_joins_it():
    """KSampler Advanced base (leftover noise) then refiner: one plan, the base's steps then the refiner's."""
    store = RunStore()
    base, leftover, base_reports = sampled(store, torch.zeros(2, 4, 4, 4), steps=3, seed=1)
    refiner, result, refiner_reports = sampled(store, leftover.clone(), steps=2, seed=2)
    assert refiner.continues is base and refiner.chain() == [base, refiner]
    plan = plan_of_run(refiner, result, 1)
    expected = torch.stack([x0[1] for _, x0 in base_reports + refiner_reports])
    assert torch.equal(plan.originals, expected) and torch.equal(plan.final, result[1])
    assert torch.equal(plan.sigmas, torch.cat([base.sigmas[:3], refiner.sigmas[:2]]))
    # the base alone is still there for a Get Plan on its own output
    assert plan_of_run(*store.find(leftover)[:1], leftover, 0).steps == 3


def test_a_pass_at_another_size_or_in_another_latent_space_stands_alone():
    store = RunStore()
    _, first, _ = sampled(store, torch.zeros(1, 4, 4, 4), seed=1)
    upscaled = torch.nn.functional.interpolate(first, scale_factor=2.0)  # hires fix
    hires, result, _ = sampled(store, upscaled, seed=2)
    assert hires.continues is None and plan_of_run(hires, result, 0).steps == 4
    other, _, _ = sampled(store, first.clone(), seed=3, latent_format=SDXL)
    assert other.continues is None
    assert newest_continued(torch.zeros(1, 4, 4, 4), store.runs, SD15) is None  # empty latents start afresh


def test_passes_join_across_stores_newest_first():
    """Base and refiner are two captured models (two checkpoints of one family): two stores."""
    base_store, refiner_store = RunStore(), RunStore()
    old, leftover, _ = sampled(base_store, torch.zeros(1, 4, 4, 4), seed=1)
    newer, same, _ = sampled(base_store, torch.zeros(1, 4, 4, 4), seed=1)
    assert torch.equal(leftover, same)
    start = leftover.clone()
    previous = newest_continued(start, base_store.runs + refiner_store.runs, SD15)
    refiner, result, _ = sampled(refiner_store, start, previous=previous, seed=2)
    assert refiner.continues is newer
    assert plan_of_run(refiner, result, 0).steps == 8


def test_a_store_forgets_other_sessions_and_keeps_at_most_max_runs():
    store = RunStore(max_runs=3)
    first, *_ = sampled(store, torch.zeros(1, 4, 4, 4), origin=RunOrigin("prompt 1", "5"))
    second, *_ = sampled(store, torch.zeros(1, 4, 4, 4), origin=RunOrigin("prompt 1", "9"))
    assert store.runs == [first, second] and store.nbytes == 2 * 4 * 4 * 4 * 4 * 4
    later = [sampled(store, torch.zeros(1, 4, 4, 4), origin=RunOrigin("prompt 2", "5"))[0] for _ in range(5)]
    assert store.runs == later[-3:]  # a new queue run drops the old one's records; then the oldest go first
    assert store.nbytes == 3 * 4 * 4 * 4 * 4 * 4
    with pytest.raises(ValueError):
        RunStore(max_runs=0)


def test_an_abandoned_run_leaves_no_record():
    store = RunStore()
    kept, result, _ = sampled(store, torch.zeros(1, 4, 4, 4))
    broken = store.begin(torch.zeros(1, 4, 4, 4), torch.linspace(1, 0, 5), SD15)
    broken.record(0, torch.ones(1, 4, 4, 4))
    store.abandon(broken)
    assert store.runs == [kept] and store.find(result) == (kept, "result")


def test_plan_errors_name_the_fix():
    store = RunStore()
    run, result, _ = sampled(store, torch.zeros(2, 4, 4, 4))
    with pytest.raises(PlanError, match=r"^batch index 2 is outside the batch of 2 \(0\.\.1\)"):
        plan_of_run(run, result, 2)
    empty, start, _ = sampled(store, torch.randn(1, 4, 4, 4), steps=0, reports=[])
    with pytest.raises(PlanError, match=r"the sampler ran no steps .*give it at least one step"):
        plan_of_run(empty, start, 0)
