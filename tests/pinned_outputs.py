"""Painted outputs pinned to stored references, portable across CPUs, kernels and thread counts.

A refactor of the engine must not change what it paints. Each case below paints with fixed
settings; its record is compared with the reference in ``tests/data/pinned_outputs.safetensors``:

- **Choices, exactly.** Every discrete choice the painter makes (``painter.decisions``: painting
  channel, stroke group, stroke centre, glow centre, flipped block, motivated places, the event each
  frame falls in) in order. A choice that differs fails, unless the reference's own margin to the
  runner-up was below :data:`TIE_MARGIN`: then summing floats in another order may flip it, the
  case is reported as a near tie by name (a pytest warning), and past that point only the first
  and last frames are compared (everything between may legitimately differ).
- **Scores and tensors, within measured tolerances.** The chosen scores, and a sample of frames
  with their stroke maps, differ by at most a small factor above the largest difference measured
  across every CPU kernel set torch offers on the regenerating machine and 1 and 2 threads (the
  table in tests/README.md).
- **Exact where it is a copy.** The last frame equals the plan's final latent bit for bit.

Regenerate the references (and the measured table) with one command, from the project root:

    .venv/bin/python tests/pinned_outputs.py --regenerate

It records every case under each kernel set (``ATEN_CPU_CAPABILITY`` default, avx2, avx512 where
the CPU has it; avx2 also caps oneDNN at AVX2) and each thread count in a subprocess, stores the
native run as the reference and the largest differences beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "data" / "pinned_outputs.safetensors"
README = HERE / "README.md"
REGENERATE = ".venv/bin/python tests/pinned_outputs.py --regenerate"

# Tolerance = FACTOR x the largest difference measured across kernel sets and thread counts, and
# never below FLOOR_ULPS float32 ulps of the tensor's (or score's) magnitude (a case that came out
# bit-identical everywhere measured must still allow another CPU's last bit).
FACTOR = 4.0
FLOOR_ULPS = 16
ULP = torch.finfo(torch.float32).eps
# A choice whose winner led the runner-up by less than this share of the scores' size is a near
# tie: a flip there is the summation order's, not the painter's. It is FACTOR x the largest relative
# score difference measured (see the README table), and at least this:
MIN_TIE_MARGIN = 1e-5
# Interior frames sampled per painting (the middle one; the last is compared exactly): every choice's
# score already depends on the canvas it was made on, so the choices fingerprint every frame between.
SAMPLES = 1
MAPS = ("frames", "strokes", "coverage", "channels")


# --- the cases --------------------------------------------------------------------------------------


def synthetic_plan(seed=0, channels=4, size=16, steps=6):
    """A small plan with a linear latent->RGB estimate, so the visible-change path is taken."""
    from plans import blurry_to_sharp_plan
    from latent_painter.painter.engine.plan import LatentFormat

    generator = torch.Generator().manual_seed(100 + channels)
    factors = torch.randn(channels, 3, generator=generator) * 0.3
    fmt = LatentFormat(name="pinned", channels=channels, rgb_factors=tuple(tuple(row) for row in factors.tolist()))
    return blurry_to_sharp_plan(channels=channels, size=size, steps=steps, seed=seed, latent_format=fmt)


def fake_decode(latents: torch.Tensor) -> torch.Tensor:
    """A deterministic, non-linear stand-in decoder: [N,C,H,W] -> images [N,2H,2W,3] in 0..1."""
    rgb = torch.stack([latents[:, 0] + 0.5 * latents[:, 1], latents[:, 1] - latents[:, 2], latents[:, 3]], -1)
    return torch.sigmoid(2 * rgb).repeat_interleave(2, 1).repeat_interleave(2, 2)


def synthetic_cases() -> dict:
    """name -> () -> (painting, the latent its last frame must equal bit for bit)."""
    from plans import blurry_to_sharp_plan
    from latent_painter.painter.engine.actions import Action
    from latent_painter.painter.engine.paint import PaintOptions, paint
    from latent_painter.painter.engine.strokes import STROKE_PRESETS, Strokes
    from latent_painter.painter.engine.transition import Route, transition

    chain = (
        Strokes(radii=STROKE_PRESETS["stroke8"], channels=(0, 1), switch_cost=0.5, motivation=0.3, schedules=2),
        Action("glow", schedules=2, motivation=0.5),
        Strokes(brush="soft", early_size=2.0, move_cost=0.3),
    )

    def painted(plan, stages, options=PaintOptions(), **kwargs):
        return lambda: (paint(plan, stages, options, **kwargs), plan.final)

    def crossed(plans, stages, route, options, **kwargs):
        last = plans[0] if kwargs.get("pingpong") else plans[-1]
        return lambda: (transition(plans, stages, route, options, **kwargs), last.final)

    return {
        "strokes default": painted(synthetic_plan(), (Strokes(),)),
        "fade": painted(synthetic_plan(), (Action("fade"),), PaintOptions(pacing="strokes")),
        "glow": painted(synthetic_plan(), (Action("glow", frames=5),), PaintOptions(pacing="strokes")),
        "flip": painted(synthetic_plan(), (Action("flip", block=3.0, motivation=0.5),), PaintOptions(pacing="strokes")),
        "dissolve": painted(synthetic_plan(), (Action("dissolve", fraction=0.6, channels=(1, 2)),),
                            PaintOptions(pacing="change", seed=7, cleanup_frames=5)),
        "chain": painted(synthetic_plan(1), chain, PaintOptions(frames=40, pacing="strokes")),
        "pacing strokes": painted(synthetic_plan(2), (Strokes(strokes_per_frame=3),), PaintOptions(pacing="strokes")),
        "pacing change": painted(synthetic_plan(2), (Strokes(radii=STROKE_PRESETS["stroke12"]),),
                                 PaintOptions(frames=30, pacing="change")),
        "pacing change, calibrated": painted(synthetic_plan(2), (Strokes(radii=STROKE_PRESETS["stroke12"]),),
                                             PaintOptions(frames=30, pacing="change"), decode=fake_decode),
        "canvas, no rgb": painted(blurry_to_sharp_plan(seed=3), (Strokes(radii=(2, 4)),), PaintOptions(frames=12),
                                  canvas=torch.full((4, 16, 16), 0.5)),
        "transition": crossed([synthetic_plan(4), synthetic_plan(5)], chain[:2],
                              Route(depth=0.5, guidance=0.3, interpolation="slerp"),
                              PaintOptions(frames=16, pacing="change"), pingpong=True, decode=fake_decode),
        "transition, guided edit": crossed([synthetic_plan(4), synthetic_plan(6)], (Strokes(),),
                                           Route(depth=0.0, guidance=1.0, guidance_steps=4),
                                           PaintOptions(frames=20, pacing="strokes")),
    }


def interpolation_cases() -> dict:
    """name -> () -> latents between two random latents (stored whole: they are small)."""
    from latent_painter.painter.engine.interpolate import interpolate, lerp_latents, slerp_latents

    generator = torch.Generator().manual_seed(11)
    a, b = torch.randn(2, 4, 8, 8, generator=generator)
    shares = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0])
    return {
        "lerp_latents": lambda: lerp_latents(a, b, 7),
        "slerp_latents": lambda: slerp_latents(a, b, 7),
        "route lerp": lambda: interpolate(a, b, shares, "lerp"),
        "route slerp": lambda: interpolate(a, b, shares, "slerp"),
    }


def photo_setup(taesd_folder):
    """The real taef2 pair and two stand-in plans of real photos at 64 px (the demo's path)."""
    from latent_painter.painter.tools.demo import PHOTOS, load_photos
    from latent_painter.painter.tools.standin import latent_format_from, photo_plan
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    vae = TinyAutoencoder.from_folder(taesd_folder)
    latents = vae.encode(load_photos(PHOTOS, 64))
    fmt = latent_format_from(latents, vae.decode(latents), name=vae.name)
    plans = [photo_plan(latents[i], latents, steps=6, latent_format=fmt) for i in range(2)]
    return vae, plans


def real_cases(vae, plans) -> dict:
    """The demo's and the benchmarks' call paths at a small size, with the real taef2 weights."""
    from latent_painter.painter.engine.actions import Action
    from latent_painter.painter.engine.paint import PaintOptions, paint
    from latent_painter.painter.engine.strokes import STROKE_PRESETS, Strokes
    from latent_painter.painter.engine.transition import Route, transition

    a, b = plans

    def painted(stages, options=PaintOptions(), calibrated=False):
        return lambda: (paint(a, stages, options, decode=vae.decode if calibrated else None), a.final)

    def crossed(stages, route, options):
        return lambda: (transition([a, b], stages, route, options, decode=vae.decode), b.final)

    stroke24 = STROKE_PRESETS["stroke24"]
    return {
        # painter/tools/demo.py: stroke24 or an action, change pacing calibrated by the real decoder
        "demo stroke24": painted((Strokes(radii=stroke24),), PaintOptions(frames=24, pacing="change"), calibrated=True),
        "demo glow": painted((Action("glow"),), PaintOptions(frames=24, pacing="change"), calibrated=True),
        # benchmarks/bench_painter.py
        "bench painter default": painted((Strokes(),)),
        "bench painter strokes": painted((Strokes(),), PaintOptions(pacing="strokes", frames=24)),
        # benchmarks/bench_transition.py
        "bench transition depth": crossed((Strokes(),), Route(depth=0.5), PaintOptions(frames=16, pacing="change")),
        "bench transition edit": crossed((Strokes(),), Route(depth=0.0, guidance=1.0), PaintOptions(frames=16, pacing="change")),
        # channel groups of one and of eight (the automatic group on 32 channels is all of them)
        "demo stroke24, one channel per stroke": painted((Strokes(radii=stroke24, channels_per_stroke=1),),
                                                         PaintOptions(frames=24, pacing="change"), calibrated=True),
        "bench painter default, one channel per stroke": painted((Strokes(channels_per_stroke=1),)),
        "bench painter default, eight channels per stroke": painted((Strokes(channels_per_stroke=8),)),
        "bench transition edit, one channel per stroke": crossed((Strokes(channels_per_stroke=1),),
                                                                 Route(depth=0.0, guidance=1.0),
                                                                 PaintOptions(frames=16, pacing="change")),
    }


# --- records --------------------------------------------------------------------------------------


@dataclass
class Record:
    """What a case is compared by: its choices and a sample of its outputs."""

    choices: list = field(default_factory=list)  # [(kind, chosen, score, margin)]
    tensors: dict = field(default_factory=dict)  # name -> tensor
    last_is_final: bool = True


def sample_indices(count: int) -> list[int]:
    """Interior frames spread evenly (the first and the last are compared exactly)."""
    picks = torch.linspace(0, count - 1, SAMPLES + 2).round().long().tolist()[1:-1]
    return sorted(set(p for p in picks if 0 < p < count - 1))


def record_painting(make) -> Record:
    from latent_painter.painter.engine.decisions import recorded

    with torch.no_grad(), recorded() as choices:
        painting, final = make()
    picks = sample_indices(len(painting))
    tensors = {name: getattr(painting, name)[picks].contiguous() for name in MAPS}
    tensors["schedule"] = painting.schedule.contiguous()
    tensors["sampled"] = torch.tensor(picks, dtype=torch.int64)
    return Record([(c.kind, c.chosen, c.score, c.margin) for c in choices], tensors,
                  bool(torch.equal(painting.frames[-1], final)))


def record_all(taesd_folder=None) -> dict[str, Record]:
    records = {name: record_painting(make) for name, make in synthetic_cases().items()}
    for name, make in interpolation_cases().items():
        with torch.no_grad():
            records[f"interpolation {name}"] = Record(tensors={"latents": make().contiguous()})
    if taesd_folder is not None:
        vae, plans = photo_setup(taesd_folder)
        for name, make in real_cases(vae, plans).items():
            records[f"taef2 {name}"] = record_painting(make)
    return records


def save_records(records: dict[str, Record], path: Path, measured: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors, metadata = {}, {}
    for case, record in records.items():
        for name, tensor in record.tensors.items():
            tensors[f"{case}/{name}"] = tensor
        if record.choices:
            kinds = sorted({kind for kind, *_ in record.choices})
            width = max(len(chosen) for _, chosen, _, _ in record.choices)
            tensors[f"{case}/choice kind"] = torch.tensor([kinds.index(kind) for kind, *_ in record.choices],
                                                          dtype=torch.int8)
            tensors[f"{case}/choice"] = torch.tensor([list(chosen) + [-1] * (width - len(chosen))
                                                      for _, chosen, _, _ in record.choices], dtype=torch.int32)
            tensors[f"{case}/choice score"] = torch.tensor([score for *_, score, _ in record.choices], dtype=torch.float64)
            tensors[f"{case}/choice margin"] = torch.tensor([margin for *_, margin in record.choices], dtype=torch.float32)
            metadata[f"{case}/choice kinds"] = json.dumps(kinds)
        metadata[f"{case}/last is final"] = json.dumps(record.last_is_final)
    if measured is not None:
        metadata["measured"] = json.dumps(measured)
    save_file(tensors, str(path), metadata=metadata)


def load_records(path: Path) -> tuple[dict[str, Record], dict]:
    from safetensors import safe_open

    records: dict[str, Record] = {}
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        for key in handle.keys():
            case, name = key.rsplit("/", 1)
            records.setdefault(case, Record()).tensors[name] = handle.get_tensor(key)
    for case, record in records.items():
        kinds = json.loads(metadata.get(f"{case}/choice kinds", "[]"))
        if kinds:
            t = record.tensors
            record.choices = [
                (kinds[int(k)], tuple(int(v) for v in chosen if v >= 0), float(score), float(margin))
                for k, chosen, score, margin in zip(t.pop("choice kind"), t.pop("choice"), t.pop("choice score"),
                                                    t.pop("choice margin"))
            ]
        record.last_is_final = json.loads(metadata.get(f"{case}/last is final", "true"))
    return records, json.loads(metadata.get("measured", "{}"))


# --- comparison -----------------------------------------------------------------------------------


class PinnedMismatch(AssertionError):
    """A case painted something else than its reference (not explained by a near tie)."""


def tie_margin(measured: dict) -> float:
    return max(MIN_TIE_MARGIN, FACTOR * measured.get("choice score", 0.0))


def tolerance(measured: dict, case: str, name: str, reference: torch.Tensor) -> float:
    """FACTOR x the measured difference, at least FLOOR_ULPS ulps of the reference's magnitude."""
    size = float(reference.abs().max()) if reference.numel() and reference.is_floating_point() else 0.0
    return max(FACTOR * measured.get(f"{case}/{name}", 0.0), FLOOR_ULPS * ULP * size)


def fail(case: str, what: str) -> PinnedMismatch:
    return PinnedMismatch(f"pinned case {case!r}: {what}. If the change is meant, regenerate the references "
                          f"with `{REGENERATE}` and say why in the commit.")


def compare(case: str, reference: Record, actual: Record, measured: dict) -> str | None:
    """Raise :class:`PinnedMismatch` where ``actual`` is not ``reference``; return a description of a
    near-tie flip (then the comparison stopped there), else None."""
    if not actual.last_is_final:
        raise fail(case, "the last frame is not the final latent bit for bit")
    near_tie = compare_choices(case, reference.choices, actual.choices, measured)
    for name, want in reference.tensors.items():
        got = actual.tensors.get(name)
        if got is None or got.shape != want.shape or got.dtype != want.dtype:
            shape = None if got is None else (tuple(got.shape), got.dtype)
            if near_tie is None:
                raise fail(case, f"tensor {name!r} is {shape}, the reference {(tuple(want.shape), want.dtype)}")
            continue
        if near_tie is not None:
            continue  # past a near-tie flip the painting may differ anywhere between its ends
        if not want.is_floating_point():
            if not torch.equal(got, want):
                where = (got != want).nonzero()[0].tolist()
                raise fail(case, f"tensor {name!r} differs at {where}: {got[tuple(where)].item()} instead of "
                                 f"{want[tuple(where)].item()} (these are choices, compared exactly)")
            continue
        largest = float((got.double() - want.double()).abs().max()) if want.numel() else 0.0
        allowed = tolerance(measured, case, name, want)
        if not largest <= allowed:
            raise fail(case, f"tensor {name!r} differs by up to {largest:.3g}, more than its tolerance {allowed:.3g} "
                             f"({FACTOR:g}x the {measured.get(f'{case}/{name}', 0.0):.3g} measured across CPU kernels "
                             "and thread counts)")
    return near_tie


def compare_choices(case: str, reference: list, actual: list, measured: dict) -> str | None:
    margin_allowed = tie_margin(measured)
    score_allowed = max(FACTOR * measured.get("choice score", 0.0), FLOOR_ULPS * ULP)
    for number, (want, got) in enumerate(zip(reference, actual), start=1):
        kind, chosen, score, margin = want
        if got[0] != kind or got[1] != chosen:
            what = (f"choice {number} ({kind}) chose {list(got[1])} where the reference chose {list(chosen)} "
                    f"with a margin of {margin:.3g} to the runner-up")
            if got[0] == kind and margin < margin_allowed:
                return f"{what}, a near tie (below {margin_allowed:.3g})"
            raise fail(case, f"{what} (not a near tie: near ties are below {margin_allowed:.3g})")
        difference = abs(got[2] - score) / max(abs(score), 1e-30)
        if math.isfinite(score) and not difference <= score_allowed:
            raise fail(case, f"choice {number} ({kind}) has the score {got[2]!r}, the reference {score!r}: a relative "
                             f"difference of {difference:.3g}, more than the tolerance {score_allowed:.3g}")
    if len(reference) != len(actual):
        raise fail(case, f"{len(actual)} choices were made, the reference made {len(reference)}")
    return None


# --- regeneration ---------------------------------------------------------------------------------


def kernel_sets() -> dict[str, dict[str, str]]:
    """The CPU kernel sets to measure on this machine: torch's default (no vector unit), AVX2
    (with oneDNN capped at AVX2 too) and AVX512 where torch says the CPU has it."""
    sets = {"default": {"ATEN_CPU_CAPABILITY": "default", "DNNL_MAX_CPU_ISA": "SSE41"},
            "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2"}}
    if torch.backends.cpu.get_cpu_capability().upper().startswith("AVX512"):
        sets["avx512"] = {"ATEN_CPU_CAPABILITY": "avx512"}
    return sets


def measure_differences(reference: dict[str, Record], other: dict[str, Record], measured: dict) -> None:
    """Grow ``measured`` to the largest difference of ``other`` from ``reference``, per tensor and
    over all chosen scores (relative); flipped choices are counted and reported, not measured."""
    for case, record in reference.items():
        theirs = other[case]
        flipped = [n for n, (a, b) in enumerate(zip(record.choices, theirs.choices)) if a[:2] != b[:2]]
        if flipped or len(record.choices) != len(theirs.choices):
            measured.setdefault("flips", []).append(case)
            continue
        for a, b in zip(record.choices, theirs.choices):
            if math.isfinite(a[2]):
                relative = abs(a[2] - b[2]) / max(abs(a[2]), 1e-30)
                measured["choice score"] = max(measured.get("choice score", 0.0), relative)
        for name, tensor in record.tensors.items():
            if tensor.is_floating_point():
                largest = float((tensor.double() - theirs.tensors[name].double()).abs().max())
                key = f"{case}/{name}"
                measured[key] = max(measured.get(key, 0.0), largest)


def write_table(measured: dict, configurations: list[str]) -> None:
    """The measured table of tests/README.md, between its markers."""
    start, end = "<!-- pinned table start -->", "<!-- pinned table end -->"
    lines = [start, "", f"Measured by `{REGENERATE}` against the native run on {len(configurations)} configurations "
                        f"({', '.join(configurations)}); tolerance = {FACTOR:g}x the measurement, at least "
                        f"{FLOOR_ULPS} float32 ulps of the tensor's magnitude.", "",
             f"Chosen scores: largest relative difference {measured.get('choice score', 0.0):.3g}; near-tie margin "
             f"{tie_margin(measured):.3g}. Choices that flipped between configurations: "
             f"{', '.join(sorted(set(measured.get('flips', [])))) or 'none'}.", "",
             "| case | tensor | largest difference measured | tolerance |", "|---|---|---:|---:|"]
    reference, _ = load_records(REFERENCE)
    for case, record in reference.items():
        for name, tensor in record.tensors.items():
            if tensor.is_floating_point():
                lines.append(f"| {case} | {name} | {measured.get(f'{case}/{name}', 0.0):.3g} | "
                             f"{tolerance(measured, case, name, tensor):.3g} |")
    lines += ["", end]
    text = README.read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    README.write_text(head + "\n".join(lines) + tail)


def regenerate(taesd_folder) -> None:
    runs = [("native, 2 threads", {}, 2)] + [(f"{name}, {threads} thread{'s' * (threads > 1)}", env, threads)
                                              for name, env in kernel_sets().items() for threads in (1, 2)]
    records = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, env, threads in runs:
            out = Path(scratch) / f"{len(records)}.safetensors"
            command = [sys.executable, __file__, "--record", str(out), "--threads", str(threads)]
            if taesd_folder is not None:
                command += ["--taesd", str(taesd_folder)]
            print(f"recording: {label}", flush=True)
            subprocess.run(command, check=True, env={**os.environ, **env, "OMP_NUM_THREADS": str(threads)})
            records[label] = load_records(out)[0]
    native = records.pop(runs[0][0])
    measured: dict = {}
    for other in records.values():
        measure_differences(native, other, measured)
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    save_records(native, REFERENCE, measured)
    write_table(measured, list(records))
    print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size // 1024} KiB) and the table in {README}")
    if measured.get("flips"):
        print(f"choices flipped between configurations in: {sorted(set(measured['flips']))}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Record or regenerate the pinned painter outputs.")
    parser.add_argument("--regenerate", action="store_true", help="record every kernel set and thread count, "
                                                                  "write the references and the README table")
    parser.add_argument("--record", metavar="FILE", help="record every case once, into FILE")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--taesd", default=None, help="folder of the taef2 pair (default: the pack's lookup)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = args.taesd
    if folder is None:
        from latent_painter.painter.tools.weights import WeightsNotFound, find_weights

        try:
            folder = find_weights(None, families=("taef2",)).folder
        except WeightsNotFound as error:
            print(f"no taef2 weights, the taef2 cases are left out: {error}", file=sys.stderr)
    if args.record:
        save_records(record_all(folder), Path(args.record))
    elif args.regenerate:
        regenerate(folder)
    else:
        parser.error("give --regenerate or --record FILE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
