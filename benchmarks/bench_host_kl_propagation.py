"""Change propagation (benchmarks/kl_change_propagation.py) on ComfyUI's SD1.5 KL-VAE, in the real host.

    COMFYUI_PATH=/work/comfy/ComfyUI LATENT_PAINTER_CKPT_CACHE=/work/ckpt_cache \\
        /work/comfy/ComfyUI/.venv/bin/python benchmarks/bench_host_kl_propagation.py \\
        [--sizes 256 512] [--frames 500] [--windows 2] [--window 8] [--json rows.json]

The painting is the one bench_host_incremental.py decodes (a photo's stand-in plan, encoded by the
VAE's own encoder, default ``Strokes()``). In runs of ``--window`` consecutive frames spread over the
painting, each configuration decodes the run's first frame in full (``ChangePropagation.full``, which
keeps every stage's input) and propagates the others; ``vae.decode`` decodes every frame too (the
reference and the time to beat). The decodes of one frame run back to back in this process, so the
machine's load meets all of them alike. Speed is the reference's time over the configuration's for
the whole run, its first full decode included; PSNR is per frame over the whole image.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_host_incremental import kl_vae, painting, setup  # noqa: E402

# threshold (share of a stage's output scale), head, attention: the most accurate configuration and the fastest
CONFIGS = ({"threshold": 0.01, "head": "recompute", "attention": "exact"},
           {"threshold": 0.03, "head": "propagate", "attention": "changed_queries"})
BOUND_DB, TARGET_SPEED = 40.0, 2.0


def name(config: dict) -> str:
    head = "latent-resolution stages recomputed" if config["head"] == "recompute" else \
        f"all stages propagated ({config['attention'].replace('_', ' ')})"
    return f"threshold {config['threshold']}, {head}"


def run_window(vae, latents, start: int, length: int) -> dict:
    from kl_change_propagation import ChangePropagation
    from latent_painter.painter.render.spans import psnr

    model = vae.first_stage_model
    engines = [ChangePropagation(model.post_quant_conv, model.decoder, **config) for config in CONFIGS]
    records = [{"seconds": 0.0, "psnr": []} for _ in CONFIGS]
    reference_seconds = 0.0
    for index in range(start, start + length):
        latent = latents[index : index + 1].contiguous()
        started = time.perf_counter()
        reference = vae.decode(latent)
        reference_seconds += time.perf_counter() - started
        for engine, record in zip(engines, records):
            started = time.perf_counter()
            decoded = engine.full(latent) if index == start else engine.update(latent)
            image = vae.process_output(decoded.float()).movedim(1, -1)
            record["seconds"] += time.perf_counter() - started
            if index > start:
                record["psnr"].append(psnr(image, reference))
        print(f"  frame {index}: " + " | ".join(f"{r['psnr'][-1]:.1f} dB" for r in records if r["psnr"]), file=sys.stderr,
              flush=True)
    for engine, record in zip(engines, records):
        counters = engine.counters
        record["stages"] = {stage: {"recomputed": c.recomputed / max(1, counters.attempts),
                                    "passed": c.passed / max(1, counters.attempts), "seconds": c.seconds}
                            for stage, c in counters.stages.items()}
        record["fallbacks"], record["finished_in_full"] = counters.fallbacks, dict(counters.finished_in_full)
    return {"start": start, "reference_seconds": reference_seconds, "configs": records}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        setup(scratch)
        import torch

        torch.set_grad_enabled(False)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)
        vae = kl_vae()
        for pixels in args.sizes:
            latents = painting(vae, pixels, args.frames)
            last = len(latents) - args.window
            starts = [round(last * (0.1 + 0.8 * k / max(1, args.windows - 1))) for k in range(args.windows)]
            with torch.inference_mode():
                windows = [run_window(vae, latents, start, args.window) for start in starts]
            reference = sum(w["reference_seconds"] for w in windows)
            for index, config in enumerate(CONFIGS):
                records = [w["configs"][index] for w in windows]
                psnrs = [p for r in records for p in r["psnr"]]
                stages = {}
                for record in records:
                    for stage, c in record["stages"].items():
                        kept = stages.setdefault(stage, {"recomputed": 0.0, "passed": 0.0, "seconds": 0.0})
                        for key in kept:
                            kept[key] += c[key] / len(records)
                rows.append({"size": pixels, "config": name(config), "starts": starts, "window": args.window,
                             "full_s_per_frame": reference / (len(starts) * args.window),
                             "speed": reference / sum(r["seconds"] for r in records),
                             "min_psnr": min(psnrs), "mean_psnr": statistics.fmean(psnrs),
                             "frames_below_bound": sum(p < BOUND_DB for p in psnrs), "compared": len(psnrs),
                             "stages": stages})
    print(f"\n| px | configuration | runs | full s/frame | speed (target >= {TARGET_SPEED}x) | min PSNR (bound {BOUND_DB:.0f} dB) "
          "| mean PSNR | frames below the bound |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['size']} | {row['config']} | {len(row['starts'])} x {row['window']} from {row['starts']} | "
              f"{row['full_s_per_frame']:.2f} | {row['speed']:.2f}x | {row['min_psnr']:.1f} dB | {row['mean_psnr']:.1f} dB | "
              f"{row['frames_below_bound']} of {row['compared']} |")
    print("\nPer stage (mean per propagated frame): share of positions recomputed / passed on")
    for row in rows:
        print(f"- {row['size']} px, {row['config']}: " + "; ".join(
            f"{stage} {s['recomputed']:.2f}/{s['passed']:.2f}" for stage, s in row["stages"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
