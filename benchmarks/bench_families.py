"""Painting time and peak memory per latent family at one image size (README "Model families").

Run:  .venv/bin/python benchmarks/bench_families.py [--pixels 1024] [--steps 20] [--frames 240]

Each case paints a synthetic plan (predicted originals that sharpen like a denoising run's) of the
latent a 1024 px image has in that family, with the default painter (stroke24, automatic channel
groups), in a fresh interpreter (benchmarks/child_memory.py), and prints the painting time, the
peak memory above what the interpreter held before, and the painted frames' own size, with the
ratio of each to the 16-channel baseline measured in the same run (on a shared machine the
seconds move with its load; the ratios less so):

- 16 channels at 1/8 (SD3, Flux.1, Wan21/Qwen-Image): 16 x 128 x 128, the baseline;
- 128 channels at 1/16 (Flux.2 as ComfyUI hands it over): 128 x 64 x 64;
- pixel space (ChromaRadiance: 3 channels at 1/1): 3 x 1024 x 1024, 64 times the area of an 8x latent.

The painting budget (painter/engine/limits.py, "painted frames") is printed beside them: a
painting whose frames need more is refused before anything is allocated.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child_memory import emit_result, reset_peak, spawn_case, status_kib  # noqa: E402

FAMILIES = {  # name: (channels, pixels per latent pixel)
    "16 channels, 1/8 (SD3, Flux.1, Qwen-Image)": (16, 8),
    "128 channels, 1/16 (Flux.2)": (128, 16),
    "pixel space, 3 channels, 1/1 (ChromaRadiance)": (3, 1),
}
BASELINE = next(iter(FAMILIES))


def synthetic_plan(channels: int, side: int, steps: int, seed: int = 0):
    """A final latent low-passed less and less, step by step (a denoising run's shape): averaged over
    blocks of a sixteenth of the side shrinking to one pixel, spread back bilinearly (linear time,
    so making a plan of a pixel-space latent costs nothing next to painting it)."""
    from latent_painter.painter.engine.plan import make_plan

    generator = torch.Generator().manual_seed(seed)
    final = torch.randn(1, channels, side, side, generator=generator)
    originals = torch.empty(steps, channels, side, side)
    for step in range(steps):
        block = max(1, round((side / 16) ** (1 - step / max(1, steps - 1))))
        coarse = torch.nn.functional.adaptive_avg_pool2d(final, max(1, side // block))
        originals[step] = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")[0]
    originals[-1] = final[0]
    return make_plan(originals)


def case(name: str, pixels: int, steps: int, frames: int) -> None:
    from latent_painter.painter.engine.paint import PaintOptions, paint
    from latent_painter.painter.engine.strokes import Strokes

    torch.set_num_threads(1)
    channels, scale = FAMILIES[name]
    plan = synthetic_plan(channels, pixels // scale, steps)
    before = status_kib("VmRSS")
    reset_peak()
    started = time.perf_counter()
    painting = paint(plan, (Strokes(),), PaintOptions(frames=frames, pacing="strokes"))
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM") - before
    exact = bool(torch.equal(painting.frames[-1], plan.final))
    emit_result({"seconds": seconds, "peak_mib": peak / 1024, "frames": len(painting),
                 "frames_mib": painting.frames.numel() * 4 / 2**20, "shape": list(plan.final.shape), "exact": exact})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case")
    parser.add_argument("--pixels", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--frames", type=int, default=240)
    args = parser.parse_args()
    if args.case:
        case(args.case, args.pixels, args.steps, args.frames)
        return
    from latent_painter.painter.engine.limits import BUDGETS, GIB
    from latent_painter.painter.engine.timeline import MAP_BYTES

    settings = [str(v) for v in ("--pixels", args.pixels, "--steps", args.steps, "--frames", args.frames)]
    rows = {name: spawn_case(__file__, name, settings) for name in FAMILIES}
    base = rows[BASELINE]
    print(f"{args.pixels} px images, {args.steps} steps, {args.frames} frames, stroke24 with automatic channel groups, "
          "pacing 'strokes', 1 thread")
    print("| family | latent | painting s | x baseline | peak MiB | x baseline | frames MiB | last frame exact |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, row in rows.items():
        shape = "x".join(map(str, row["shape"]))
        print(f"| {name} | {shape} | {row['seconds']:.1f} | {row['seconds'] / base['seconds']:.1f} | "
              f"{row['peak_mib']:.0f} | {row['peak_mib'] / base['peak_mib']:.1f} | {row['frames_mib']:.0f} | "
              f"{row['exact']} |")
    budget = BUDGETS["painted frames"]
    for name, (channels, scale) in FAMILIES.items():
        frame = (channels * 4 + MAP_BYTES) * (args.pixels // scale) ** 2  # as timeline.check_frame_budget counts
        print(f"{name}: at most {math.floor(budget / frame)} frames of {args.pixels} px with their stroke maps "
              f"within the {budget / GIB:g} GiB painted-frames budget")


if __name__ == "__main__":
    main()
