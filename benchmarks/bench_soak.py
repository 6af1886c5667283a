"""Long session: 20 paintings queued one after another in one real ComfyUI server (issue 13).

Run with the project venv (the server runs as a subprocess with ComfyUI's own Python):

    COMFYUI_PATH=/path/to/ComfyUI LATENT_PAINTER_CKPT_CACHE=/path/to/cache \\
        .venv/bin/python benchmarks/bench_soak.py [--runs 20]

The server is started through ``tests/host/comfy_host.py`` (the host tests' one seam) with the
random-weight SD1.5 test checkpoint (written once into LATENT_PAINTER_CKPT_CACHE). Every run is
a different painting: a new plan (Latent Painter Sampler with its own seed, size and step count),
a different painter chain (stroke presets and brushes, fade / glow / flip / dissolve actions,
chains of both), pacing by strokes or by change (every third run calibrated by the VAE), then
Decode Frames, Save Animated WEBP (lossless), Save Latent of the frames and of the sampled latent,
Save Plan, and the core VAE Decode + Save Image of the sampled latent.

After each run the server process's resident memory is read (VmRSS of /proc/<pid>/status) and
every output is checked: the frames end on the sampled latent bit for bit and, without a VAE
connected to Paint, start on the empty canvas; the plan file loads and ends on the same latent;
the WEBP has the run's size, every frame (played time = frames / fps) and its last frame shows
what the core VAE Decode shows for the sampled latent (within one 8-bit level: the two decode
in batches of other sizes).

Printed: one line per run, then the resident memory after the 3rd run (the first three runs
include the largest and the smallest size) against the largest and the last value over the
remaining runs. Target: growth <= 10 %. Exit status 1 if
any output is wrong or the target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "host"))

from comfy_host import ComfyHost, comfy_python, png_info, webp_info  # noqa: E402

TARGET = 0.10
SEED_CKPT = 1001  # the host tests' checkpoint A
FPS = 10.0
SIZES = (96, 64, 48, 80)  # the warm-up runs see the largest and the smallest size


@dataclass(frozen=True)
class Run:
    number: int
    size: int
    steps: int
    seed: int
    painter: str
    frames: int
    pacing: str
    calibrate: bool

    def describe(self) -> str:
        return (f"{self.size}px {self.steps} steps seed {self.seed}, {self.painter}, {self.frames} frames "
                f"by {self.pacing}{' +VAE' if self.calibrate else ''}")


def strokes(preset: str, brush: str, previous=None, schedules: int = 0) -> dict:
    inputs = {"preset": preset, "brush": brush, "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
              "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": schedules}
    if previous is not None:
        inputs["previous"] = previous
    return {"class_type": "LatentPainterStrokes", "inputs": inputs}


def action(kind: str, previous=None, schedules: int = 0, channels: str = "") -> dict:
    inputs = {"kind": kind, "frames": 0, "channels": channels, "motivation": 0.0, "block": 2.0, "fraction": 0.5,
              "schedules": schedules}
    if previous is not None:
        inputs["previous"] = previous
    return {"class_type": "LatentPainterAction", "inputs": inputs}


# name -> painter nodes (ids 20.., the chain's end is the highest id)
PAINTERS = {
    "stroke8 disk": lambda: {"20": strokes("stroke8", "disk")},
    "stroke12 soft": lambda: {"20": strokes("stroke12", "soft")},
    "fade then stroke8 square": lambda: {"20": action("fade", schedules=1), "21": strokes("stroke8", "square", ["20", 0])},
    "dissolve": lambda: {"20": action("dissolve")},
    "glow then stroke24 disk": lambda: {"20": action("glow", schedules=1), "21": strokes("stroke24", "disk", ["20", 0])},
    "flip channels 0-1": lambda: {"20": action("flip", channels="0-1")},
}


def plan_runs(count: int) -> list[Run]:
    names = list(PAINTERS)
    return [
        Run(number=i + 1, size=SIZES[i % len(SIZES)], steps=2 + i % 2, seed=1000 + 17 * i,
            painter=names[i % len(names)], frames=5 + i % 4, pacing=("change", "strokes")[i % 2 == 1],
            calibrate=i % 3 == 2)
        for i in range(count)
    ]


def prompt_for(run: Run, ckpt: str) -> dict:
    prefix = f"soak/run{run.number:02d}/"  # no spaces: check_outputs reads the plan's name off Save Plan's text
    painter = PAINTERS[run.painter]()
    paint_inputs = {"plan": ["5", 1], "painter": [max(painter, key=int), 0], "frames": run.frames,
                    "pacing": run.pacing, "cleanup_frames": 2, "seed": run.seed}
    if run.calibrate:
        paint_inputs["vae"] = ["1", 2]
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": f"painting number {run.number}", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": run.size, "height": run.size, "batch_size": 1}},
        "5": {"class_type": "LatentPainterSampler", "inputs": {
            "model": ["1", 0], "seed": run.seed, "steps": run.steps, "cfg": 1.0, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["5", 1], "filename_prefix": prefix + "plan"}},
        **painter,
        "8": {"class_type": "LatentPainterPaint", "inputs": paint_inputs},
        "9": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": ["1", 2], "frames": ["8", 0], "chunk_size": 4, "white_canvas": False,
            "stroke_map_side_by_side": False}},
        "10": {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["9", 0], "filename_prefix": prefix + "anim", "fps": FPS, "lossless": True, "quality": 100,
            "method": "fastest"}},
        "11": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": prefix + "frames"}},
        "12": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": prefix + "latent"}},
        "13": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": prefix + "final"}},
    }


def check_outputs(host: ComfyHost, history: dict, run: Run) -> list[str]:
    """What is wrong with the run's outputs (empty when everything is right)."""
    import numpy as np
    import torch
    from PIL import Image, ImageSequence
    from safetensors.torch import load_file

    from latent_painter.painter.engine.plan import load_plan

    def only(node_id: str) -> Path:
        (path,) = host.output_files({"outputs": {node_id: history["outputs"][node_id]}})
        return path

    problems = []
    frames = load_file(str(only("11")))["latent_tensor"]
    latent = load_file(str(only("12")))["latent_tensor"]
    side = run.size // 8
    if frames.shape != (run.frames, 4, side, side):
        problems.append(f"frames {tuple(frames.shape)}, expected {(run.frames, 4, side, side)}")
    elif not torch.equal(frames[-1], latent[0]):
        problems.append("the last frame is not the sampled latent")
    elif not run.calibrate and not torch.equal(frames[0], torch.zeros_like(frames[0])):
        problems.append("the first frame is not the empty canvas")  # (with a VAE: the final image's mean colour)
    saved = history["outputs"]["6"]["text"][0]  # "saved <name> [output]: ..."
    plan = load_plan(host.output_dir / saved.split(" ")[1])
    if plan.steps != run.steps or not torch.equal(plan.final, latent[0]):
        problems.append(f"the plan has {plan.steps} steps and ends elsewhere than the sampled latent")
    webp = only("10")
    _, width, height, duration = webp_info(webp)
    if (width, height, duration) != (run.size, run.size, round(run.frames * 1000 / FPS)):
        problems.append(f"webp {width}x{height} playing {duration} ms, expected {run.size}x{run.size} "
                        f"playing {run.frames * 1000 / FPS:.0f} ms")
    with Image.open(webp) as image:
        last = np.asarray(list(ImageSequence.Iterator(image))[-1].convert("RGB"), dtype=np.int16)
    png_width, png_height, _ = png_info(only("14"))
    with Image.open(only("14")) as image:
        final = np.asarray(image.convert("RGB"), dtype=np.int16)
    if (png_width, png_height) != (run.size, run.size) or last.shape != final.shape:
        problems.append(f"the decoded final image is {png_width}x{png_height}, the WEBP's last frame {last.shape}")
    elif np.abs(last - final).max() > 1:
        problems.append(f"the WEBP's last frame differs from VAE Decode of the sampled latent by up to "
                        f"{np.abs(last - final).max()} levels")
    return problems


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (or COMFYUI_PATH)")
    parser.add_argument("--runs", type=int, default=20, help="paintings to queue (default 20, at least 4)")
    parser.add_argument("--keep", action="store_true", help="keep the server's scratch folder (outputs, log)")
    args = parser.parse_args(argv)
    if not args.comfyui or not (Path(args.comfyui) / "main.py").is_file():
        parser.error("give --comfyui (or COMFYUI_PATH): a ComfyUI checkout with main.py")
    if args.runs < 4:
        parser.error("--runs must be at least 4 (3 warm-up runs, then the measured ones)")
    return args


def main(argv=None) -> int:
    args = parse(argv)
    scratch = Path(tempfile.mkdtemp(prefix="lp_soak_"))
    host = ComfyHost(Path(args.comfyui).resolve(), scratch, comfy_python(Path(args.comfyui)))
    ckpt = host.ensure_checkpoint(SEED_CKPT)
    runs = plan_runs(args.runs)
    rss, failures = [], 0
    started = time.monotonic()
    try:
        host.start()
        print(f"ComfyUI pid {host.proc.pid}, idle RSS {host.rss_kib() / 1024:.0f} MiB; {len(runs)} paintings", flush=True)
        print(f"{'run':>3}  {'seconds':>7}  {'RSS MiB':>8}  outputs  painting")
        for run in runs:
            t0 = time.monotonic()
            history = host.queue(prompt_for(run, ckpt))
            seconds = time.monotonic() - t0
            rss.append(host.rss_kib())
            problems = check_outputs(host, history, run)
            failures += bool(problems)
            print(f"{run.number:>3}  {seconds:7.1f}  {rss[-1] / 1024:8.1f}  {'ok' if not problems else 'WRONG':7}  "
                  f"{run.describe()}", flush=True)
            for problem in problems:
                print(f"       {problem}")
        peak = host.peak_rss_kib()
    finally:
        host.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"scratch kept: {scratch}")
    base, rest = rss[2], rss[3:]
    growth_max = max(rest) / base - 1
    growth_last = rest[-1] / base - 1
    print(f"\nRSS after run 3: {base / 1024:.1f} MiB; over runs 4-{len(rss)}: max {max(rest) / 1024:.1f} MiB "
          f"(growth {growth_max * 100:+.1f} %), last {rest[-1] / 1024:.1f} MiB (growth {growth_last * 100:+.1f} %); "
          f"peak (VmHWM) {peak / 1024:.1f} MiB; target <= {TARGET * 100:.0f} %: "
          f"{'met' if growth_max <= TARGET else 'MISSED'}")
    print(f"outputs: {len(runs) - failures}/{len(runs)} runs correct; {time.monotonic() - started:.0f} s in all")
    return 0 if failures == 0 and growth_max <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
