"""Plan validation and safetensors I/O, including corrupt and foreign files."""

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from latent_painter.painter.engine.plan import (
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

    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(PlanError):
        load_plan(path)
    # torch.save's zip-wrapped pickle, and a pickle after a plausible 8-byte header length
    torch.save({"originals": Boom()}, tmp_path / "evil.pt")
    for blob in ((tmp_path / "evil.pt").read_bytes(), len(pickle.dumps(Boom())).to_bytes(8, "little") + pickle.dumps(Boom())):
        path.write_bytes(blob)
        with pytest.raises(PlanError, match="evil.safetensors"):
            load_plan(path)
    assert not marker.exists()
    os.system("true")  # the marker command itself works: its absence above is not an accident of the shell
    assert pickle.loads(pickle.dumps(Boom())) == 0 and marker.exists()


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
        (torch.zeros(2, 4, 3, 8, 8), None, r"4 dimensions, got shape \(2, 4, 3, 8, 8\)"),
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


# --- hostile plan files: every one ends in a PlanError naming the file, or a valid plan ------------
#
# Files are built byte by byte (8-byte little-endian header length, JSON header, data), so headers
# can lie in ways no writer would produce. Run with --hypothesis-show-statistics to see the counts.

HOSTILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SAFETENSORS_DTYPES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U8", "BOOL", "C64", "X9"]
BYTES_PER = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
             "I8": 1, "U8": 1, "BOOL": 1, "C64": 8, "X9": 4}


def _valid_plan():
    return make_plan(torch.randn(4, 3, 6, 6), torch.randn(3, 6, 6), torch.linspace(5, 0.1, 4),
                     LatentFormat("SD15", 3, 0.18215, 0.0, ((0.1, 0.2, 0.3),) * 3, (0.0, 0.1, 0.2)))


def _valid_file(tmp_path) -> bytes:
    return open(save_plan(_valid_plan(), tmp_path / "valid.safetensors"), "rb").read()


def _split(blob: bytes) -> tuple[dict, bytes]:
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def _craft(header: dict, data: bytes, length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def _metadata(version="1", latent_format=None) -> dict:
    return {"kind": "latent-painter-plan", "version": version,
            "latent_format": json.dumps(latent_format if latent_format is not None else {"name": "x", "channels": 3})}


def _header_entries(tensors: dict[str, tuple[str, list[int]]]) -> tuple[dict, bytes]:
    """Header entries whose data offsets are consistent with the shapes, and the zero bytes they need."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = BYTES_PER[dtype]
        for side in shape:
            size *= side
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return header, bytes(offset)


def _load_outcome(path):
    """load_plan must end in a PlanError naming the file, or a plan that is valid and survives a round trip."""
    try:
        plan = load_plan(path)
    except PlanError as error:
        assert os.path.basename(path) in str(error), error
        return "refused"
    assert plan.originals.dtype == torch.float32 and plan.originals.dim() == 4
    assert torch.isfinite(plan.originals).all() and torch.isfinite(plan.final).all()
    assert plan.final.shape == plan.originals.shape[1:] and plan.sigmas.numel() in (0, plan.steps)
    assert plan.latent_format.channels == plan.channels
    again = load_plan(save_plan(plan, str(path) + ".again"))
    assert torch.equal(again.originals, plan.originals) and again.latent_format == plan.latent_format
    return "loaded"


@HOSTILE
@given(data=st.data())
def test_damaged_files_give_a_plan_error(tmp_path, data):
    blob = _valid_file(tmp_path)
    how = data.draw(st.sampled_from(["empty", "truncate", "flip", "flip header", "garbage", "header length"]))
    if how == "empty":
        blob = b""
    elif how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif how in ("flip", "flip header"):
        end = int.from_bytes(blob[:8], "little") + 8 if how == "flip header" else len(blob)
        for _ in range(data.draw(st.integers(1, 8))):
            index = data.draw(st.integers(0, end - 1))
            blob = blob[:index] + bytes([blob[index] ^ (1 << data.draw(st.integers(0, 7)))]) + blob[index + 1 :]
    elif how == "garbage":
        blob = data.draw(st.binary(min_size=0, max_size=300))
    else:  # the 8-byte header length lies: 0, a little off, past the file, or near 2**64
        length = data.draw(st.one_of(st.integers(0, 2**64 - 1), st.integers(0, len(blob) + 64)))
        blob = length.to_bytes(8, "little") + blob[8:]
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(blob)
    event(f"{how}: {_load_outcome(path)}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
latent_formats = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "channels": st.one_of(st.just(3), json_values),
        "scale": st.one_of(st.just(0.5), json_values),
        "shift": json_values,
        "rgb_factors": st.one_of(st.just([[0.1, 0.2, 0.3]] * 3), json_values),
        "rgb_bias": st.one_of(st.just([0.0, 0.1, 0.2]), json_values),
    },
)


@HOSTILE
@given(data=st.data())
def test_headers_that_lie_give_a_plan_error(tmp_path, data):
    """Shapes, dtypes, tensors and metadata that do not match what save_plan writes."""
    blob = _valid_file(tmp_path)
    header, payload = _split(blob)
    how = data.draw(st.sampled_from(["shape", "dtype", "offsets", "missing", "extra", "version", "kind",
                                     "latent_format", "consistent lie"]))
    name = data.draw(st.sampled_from(["originals", "final", "sigmas"]))
    if how == "shape":
        header[name]["shape"] = data.draw(st.lists(st.one_of(st.integers(0, 8), st.integers(0, 10**12)), max_size=6))
    elif how == "dtype":
        header[name]["dtype"] = data.draw(st.sampled_from(SAFETENSORS_DTYPES))
    elif how == "offsets":
        header[name]["data_offsets"] = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=2, max_size=2))
    elif how == "missing":
        del header[name]
    elif how == "extra":
        header["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(payload), len(payload) + 4]}
        payload += bytes(4)
    elif how == "version":
        header["__metadata__"]["version"] = data.draw(
            st.one_of(st.sampled_from(["0", "-1", "2", "99", "1.0", " 1", "", "१", "99999999999999999999"]), st.text(max_size=6)))
    elif how == "kind":
        header["__metadata__"]["kind"] = data.draw(st.sampled_from(["", "latent-painter-plan ", "LATENT-PAINTER-PLAN"]))
    elif how == "latent_format":
        header["__metadata__"]["latent_format"] = data.draw(
            st.one_of(latent_formats.map(json.dumps), st.text(max_size=20), st.just("[" * 100_000)))
    else:  # shapes and dtypes that agree with the offsets, so only the pack's own checks stand
        dims = {"originals": 4, "final": 3, "sigmas": 1}
        tensors = {key: (data.draw(st.sampled_from(SAFETENSORS_DTYPES[:-1])),
                         data.draw(st.lists(st.integers(0, 5), min_size=max(0, dims[key] - 1), max_size=dims[key] + 1)))
                   for key in dims}
        entries, payload = _header_entries(tensors)
        header = {"__metadata__": _metadata(), **entries}
    path = tmp_path / "lying.safetensors"
    path.write_bytes(_craft(header, payload))
    event(f"{how}: {_load_outcome(path)}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=st.dictionaries(st.text(min_size=1, max_size=10),
                               st.tuples(st.sampled_from([torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool]),
                                         st.lists(st.integers(0, 4), max_size=4)), max_size=4),
       metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)))
def test_foreign_safetensors_give_a_plan_error(tmp_path, tensors, metadata):
    path = tmp_path / "foreign.safetensors"
    save_file({key: torch.zeros(shape, dtype=dtype) for key, (dtype, shape) in tensors.items()}, str(path), metadata=metadata)
    with pytest.raises(PlanError, match="foreign.safetensors"):
        load_plan(path)


def test_a_header_claiming_a_huge_tensor_is_refused_without_allocating(tmp_path):
    """10**12 elements claimed by the header (with and without the data offsets to match) and a
    plan over the step limit whose data is really there: refused by the header alone."""
    import subprocess
    import sys

    claims = {
        "huge.safetensors": _craft({"__metadata__": _metadata(), **_header_entries(
            {"originals": ("F32", [10**3, 10**3, 10**3, 1]), "final": ("F32", [1, 1, 1]), "sigmas": ("F32", [0])})[0]}, b""),
        "huge_offsets.safetensors": _craft({"__metadata__": _metadata(), "originals": {
            "dtype": "F32", "shape": [10**6, 10**2, 10**2, 10**2], "data_offsets": [0, 4 * 10**12]},
            "final": {"dtype": "F32", "shape": [1, 1, 1], "data_offsets": [0, 4]},
            "sigmas": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}, bytes(4)),
        "too_many_steps.safetensors": _craft({"__metadata__": _metadata(), **_header_entries(
            {"originals": ("F32", [10_001, 1, 1, 1]), "final": ("F32", [1, 1, 1]), "sigmas": ("F32", [0])})[0]},
            bytes(4 * 10_002)),
    }
    for name, blob in claims.items():
        (tmp_path / name).write_bytes(blob)
    # A fresh process, so its peak resident memory is this loader's alone. ru_maxrss counts KiB on
    # Linux and bytes on macOS; Windows has no resource module.
    pytest.importorskip("resource")
    script = f"""
import resource, sys
from latent_painter.painter.engine.plan import PlanError, load_plan
def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
before = peak_kib()
for name in {sorted(claims)!r}:
    try:
        load_plan({str(tmp_path)!r} + "/" + name)
    except PlanError as error:
        print("refused", name, error)
    else:
        print("LOADED", name)
print("peak growth KiB", peak_kib() - before)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["refused", name] for name in sorted(claims)]
    assert "more than 10000; use fewer sampling steps" in lines[-2]
    growth_kib = int(lines[-1].split()[-1])
    assert growth_kib < 32 * 1024, result.stdout  # 10**12 float32 would be 4 TB


def test_refused_by_the_header_before_any_data_is_read(tmp_path, monkeypatch):
    """The size limit and the dtype check look at the header; get_tensor is never reached."""
    import safetensors

    from latent_painter.painter.engine import plan as plan_module

    reads = []
    real_open = safetensors.safe_open

    class Spy:
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            self.inner = self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def get_tensor(self, key):
            reads.append(key)
            return self.inner.get_tensor(key)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    path = save_plan(make_plan(torch.randn(8, 4, 32, 32)), tmp_path / "big.safetensors")
    assert load_plan(path).steps == 8 and reads == ["originals", "final", "sigmas"]  # the spy sees reads
    reads.clear()
    from latent_painter.painter.engine import limits

    monkeypatch.setitem(limits.BUDGETS, "plan", 64 * 1024)
    with pytest.raises(PlanError, match=r"big.safetensors.*GiB, more than"):
        load_plan(path)
    ints = tmp_path / "ints.safetensors"
    entries, payload = _header_entries({"originals": ("I64", [2, 1, 2, 2]), "final": ("F32", [1, 2, 2]), "sigmas": ("F32", [0])})
    ints.write_bytes(_craft({"__metadata__": _metadata(latent_format={"channels": 1}), **entries}, payload))
    with pytest.raises(PlanError, match="'originals' is I64, not floating point"):
        load_plan(ints)
    assert reads == []


def test_the_plan_file_signature_reads_the_header_only_and_changes_with_a_new_save(tmp_path, monkeypatch):
    """Load Plan's change detection: plans reach gigabytes, so it reads the 8-byte length and the
    header, never the tensors; a save (a new file under the name) changes it."""
    from latent_painter.painter.engine import plan as plan_module

    path = save_plan(make_plan(torch.randn(6, 4, 32, 32)), tmp_path / "plan.safetensors")
    read = []
    real_open = open

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def read(self, size=-1):
            data = self.handle.read(size)
            read.append(len(data))
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(plan_module, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    signature = plan_module.plan_file_signature(path)
    header = int.from_bytes(Path(path).read_bytes()[:8], "little")
    assert sum(read) == 8 + header < os.path.getsize(path) // 100
    assert plan_module.plan_file_signature(path) == signature
    save_plan(make_plan(torch.randn(6, 4, 32, 32)), path)  # same shapes, same size, same header layout
    assert plan_module.plan_file_signature(path) != signature
