"""Plan validation and safetensors I/O, including corrupt and foreign files."""

import json
import os
import pickle

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from latent_painter.painter.plan import (
    LatentFormat,
    PlanError,
    load_plan,
    make_plan,
    save_plan,
)

shapes = st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9))
formats = st.builds(
    LatentFormat,
    name=st.text(min_size=1, max_size=12),
    scale=st.floats(0.01, 10, allow_nan=False),
    shift=st.floats(-1, 1, allow_nan=False),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, fmt=formats, seed=st.integers(0, 2**31 - 1), with_sigmas=st.booleans())
def test_round_trip_keeps_every_bit(tmp_path, shape, fmt, seed, with_sigmas):
    generator = torch.Generator().manual_seed(seed)
    originals = torch.randn(shape, generator=generator) * 3
    final = torch.randn(shape[1:], generator=generator)
    sigmas = torch.rand(shape[0], generator=generator) * 14 if with_sigmas else None
    plan = make_plan(originals, final, sigmas, fmt)
    path = save_plan(plan, tmp_path / "round.safetensors")
    loaded = load_plan(path)
    assert torch.equal(loaded.originals, plan.originals)
    assert torch.equal(loaded.final, plan.final)
    assert torch.equal(loaded.sigmas, plan.sigmas)
    assert loaded.latent_format == plan.latent_format
    assert loaded.latent_format.channels == shape[1]


def test_rgb_factors_survive_the_file(tmp_path):
    factors = tuple((0.1 * c, -0.2, 0.3) for c in range(4))
    fmt = LatentFormat("SD15", 4, 0.18215, 0.0, factors, (0.1, 0.2, 0.3))
    plan = make_plan(torch.randn(3, 4, 5, 5), latent_format=fmt)
    loaded = load_plan(save_plan(plan, tmp_path / "p.safetensors"))
    assert loaded.latent_format.rgb_factors == factors
    assert torch.allclose(loaded.latent_format.rgb_matrix(), torch.tensor(factors))


def _valid_file(tmp_path) -> bytes:
    plan = make_plan(torch.randn(4, 3, 6, 6), torch.randn(3, 6, 6), torch.linspace(5, 0.1, 4))
    return open(save_plan(plan, tmp_path / "valid.safetensors"), "rb").read()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_give_a_plan_error(tmp_path, data):
    blob = _valid_file(tmp_path)
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage"]))
    if how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how == "flip":
        index = data.draw(st.integers(0, min(len(blob) - 1, 400)))
        blob = blob[:index] + bytes([blob[index] ^ data.draw(st.integers(1, 255))]) + blob[index + 1 :]
    else:
        blob = data.draw(st.binary(min_size=0, max_size=300))
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(blob)
    try:
        plan = load_plan(path)
    except PlanError as error:
        assert "damaged.safetensors" in str(error)
    else:
        # a flipped bit inside the tensor data can still be a readable plan; it must be a valid one
        assert torch.isfinite(plan.originals).all() and plan.originals.dim() == 4


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(PlanError, match="not a Latent Painter plan"):
        load_plan(path)


def test_pickle_is_never_loaded(tmp_path):
    path = tmp_path / "evil.safetensors"

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(PlanError):
        load_plan(path)
    assert not (tmp_path / "pwned").exists()


def test_newer_format_version_is_refused(tmp_path):
    meta = {"kind": "latent-painter-plan", "version": "99", "latent_format": json.dumps({})}
    tensors = {"originals": torch.zeros(2, 1, 2, 2), "final": torch.zeros(1, 2, 2), "sigmas": torch.zeros(0)}
    path = tmp_path / "future.safetensors"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(PlanError, match="newer"):
        load_plan(path)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(PlanError, match="no such file"):
        load_plan(tmp_path / "absent.safetensors")


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    import safetensors.torch

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", explode)
    plan = make_plan(torch.randn(2, 2, 3, 3))
    with pytest.raises(KeyboardInterrupt):
        save_plan(plan, tmp_path / "half.safetensors")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "originals, final, match",
    [
        (torch.zeros(0, 4, 8, 8), None, "empty"),
        (torch.zeros(4, 8, 8), None, "4 dimensions"),
        (torch.zeros(2, 4, 3, 8, 8), None, "video latents"),
        (torch.full((2, 4, 8, 8), float("nan")), None, "NaN"),
        (torch.zeros(2, 4, 8, 8, dtype=torch.int64), None, "floating-point"),
        (torch.zeros(2, 4, 8, 8), torch.zeros(4, 8, 9), "same run"),
        (torch.zeros(2, 4, 8, 8), torch.full((4, 8, 8), float("inf")), "NaN/inf"),
        ([[1.0]], None, "must be a tensor"),
    ],
)
def test_bad_plans_are_refused_with_a_reason(originals, final, match):
    with pytest.raises(PlanError, match=match):
        make_plan(originals, final)


def test_channel_mismatch_with_the_format_is_refused():
    with pytest.raises(PlanError, match="does not match the 4-channel"):
        make_plan(torch.zeros(2, 4, 8, 8), latent_format=LatentFormat("Flux", 16))


def test_targets_end_exactly_on_the_final_latent():
    originals = torch.randn(3, 2, 4, 4)
    same = make_plan(originals)
    assert same.targets.shape[0] == 3 and torch.equal(same.targets[-1], originals[-1])
    final = torch.randn(2, 4, 4)
    extra = make_plan(originals, final)
    assert extra.targets.shape[0] == 4 and torch.equal(extra.targets[-1], final)
    # an Euler step to sigma 0 recomputes the last prediction with rounding: it takes its place
    rounded = originals[-1] + 1e-7 * torch.randn(2, 4, 4)
    near = make_plan(originals, rounded)
    assert near.targets.shape[0] == 3 and torch.equal(near.targets[-1], rounded)
    assert torch.equal(near.targets[:2], originals[:2])
