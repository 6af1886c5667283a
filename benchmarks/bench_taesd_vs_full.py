"""Render fast with TAESD, against the full VAE: the README's side-by-side comparison (issue 27).

Run with the ComfyUI host's Python (it imports ``comfy`` and ``nodes`` from the checkout):

    COMFYUI_PATH=/path/to/ComfyUI /path/to/ComfyUI/.venv/bin/python benchmarks/bench_taesd_vs_full.py \\
        [--pixels 256] [--frames 400] [--kl-frames 8] [--strip workflows/preview/taesd_vs_full.jpg] [--json rows.json]

Three whole runs of the Render node, in this process, at the same size, each into a lossless animated
WEBP (so the frames can be read back exactly); compared per frame, since the full VAE decodes every
frame whole at the same cost (``--kl-frames`` of them are timed: on a CPU one costs half a minute):

- **full VAE**: ComfyUI's ``AutoencoderKL`` as CheckpointLoaderSimple builds it for SD1.5 (random
  weights: the host tests' checkpoint). Its decoder is the one SD1.x/SD2 use and, but for the width
  of its first convolution, SD3's, Flux.1's and Z-Image's: a full decode costs what it costs with real
  weights, but its pictures mean nothing, so it is timed and not shown. ``decode: auto`` decodes it
  whole (the node says so).
- **TAESD, decode full** and **TAESD, decode auto**: core VAELoader's TAESD built from the real taef2
  pair (bench_host_incremental.core_taesd; FLUX.2's space, 32 channels; a fixture, no weights shipped),
  every frame decoded whole, then only what changed.

The strip shows the same frames from TAESD decoded whole and from TAESD with ``auto`` (every frame of the
two files is compared: PSNR). What TAESD costs in look against a model's *full* VAE cannot be measured
here (no full-VAE weights with a TAESD of the same space on this machine): the README says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_host_incremental import core_taesd, kl_vae, painting, setup  # noqa: E402

SHARES = (0.1, 0.3, 0.5, 0.7, 0.9)
TILE = 144  # pixels per frame in the strip


def render(vae, latents, label: str, mode: str, out_dir: str) -> dict:
    """The Render node's whole run into a lossless WEBP: wall clock, its report and the file."""
    import folder_paths

    from latent_painter.nodes.render import LatentPainterRender

    folder_paths.set_output_directory(out_dir)
    started = time.perf_counter()
    result = LatentPainterRender().render(
        frames={"samples": latents}, vae=vae, filename_prefix=f"bench/{label}_{mode}", format="webp", fps=24.0,
        quality=100, hold_first=0, hold_last=0, pingpong=False, white_canvas=False, stroke_map_side_by_side=False,
        chunk_size=4, decode=mode)
    seconds = time.perf_counter() - started
    item = result["ui"]["images"][0]
    return {"vae": label, "mode": mode, "seconds": seconds, "frames": int(latents.shape[0]),
            "report": result["ui"]["text"][0], "file": os.path.join(out_dir, item["subfolder"], item["filename"])}


def read_webp(path: str, fps: float = 24.0):
    """Every played frame of an animated WEBP (the writer stores a run of equal frames as one longer
    frame: it is repeated by its duration)."""
    import numpy as np
    import torch
    from PIL import Image, ImageSequence

    frames = []
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            repeat = max(1, round(frame.info.get("duration", 1000 / fps) * fps / 1000))
            frames += [torch.from_numpy(np.array(frame.convert("RGB"))).float() / 255] * repeat
    return torch.stack(frames)


def strip(full, auto, path: str, psnrs) -> None:
    """Top: TAESD decoded whole; bottom: TAESD with decode auto; the same frames, with their PSNR."""
    import torch
    from PIL import Image, ImageDraw

    from latent_painter.painter.render.writers import to_uint8

    import torch.nn.functional as F

    picks = [min(len(full) - 1, round(s * (len(full) - 1))) for s in SHARES]

    def small(frame):
        return F.interpolate(frame.permute(2, 0, 1)[None], scale_factor=TILE / frame.shape[0], mode="area")[0].permute(1, 2, 0)

    rows = [torch.cat([small(frames[i]) for i in picks], dim=1) for frames in (full, auto)]
    band = 14
    h, w = rows[0].shape[:2]
    canvas = Image.new("RGB", (w, 2 * (h + band)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    labels = ("TAESD, decode full (every frame whole)",
              "TAESD, decode auto (only what changed): " + ", ".join(f"{psnrs[i]:.1f}" for i in picks) + " dB")
    for k, (row, label) in enumerate(zip(rows, labels)):
        draw.text((3, k * (h + band) + 1), label, fill=(40, 40, 40))
        canvas.paste(Image.fromarray(to_uint8(row).numpy()), (0, k * (h + band) + band))
    canvas.save(path, "JPEG", quality=82, optimize=True, progressive=True)


def psnr(a, b) -> float:
    import math

    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=256)
    parser.add_argument("--frames", type=int, default=400, help="frames of the TAESD painting")
    parser.add_argument("--kl-frames", type=int, default=8, help="frames of the full VAE's painting (timed per frame)")
    parser.add_argument("--strip", default=None, help="write the side-by-side JPEG here")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        setup(scratch)
        import torch

        torch.set_grad_enabled(False)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)
        os.makedirs(os.path.join(scratch, "vae"))
        taesd, kl = core_taesd(os.path.join(scratch, "vae")), kl_vae()
        out = os.path.join(scratch, "out")
        taesd_latents = painting(taesd, args.pixels, args.frames)
        kl_latents = painting(kl, args.pixels, args.kl_frames)
        runs = [render(kl, kl_latents, "kl", "auto", out), render(taesd, taesd_latents, "taesd", "full", out),
                render(taesd, taesd_latents, "taesd", "auto", out)]
        base = runs[0]["seconds"] / runs[0]["frames"]
        print(f"| VAE | decode | {args.pixels} px, frames | Render run | s/frame | speed per frame vs full VAE |")
        for run in runs:
            run["per_frame"] = run["seconds"] / run["frames"]
            print(f"| {run['vae']} | {run['mode']} | {run['frames']} | {run['seconds']:.1f} s | "
                  f"{run['per_frame']:.3f} | {base / run['per_frame']:.2f}x |  {run['report']}", flush=True)
        full, auto = read_webp(runs[1]["file"]), read_webp(runs[2]["file"])
        assert full.shape == auto.shape, (full.shape, auto.shape)
        psnrs = [psnr(a, b) for a, b in zip(full, auto)]
        finite = [p for p in psnrs if p != float("inf")]
        look = {"frames_compared": len(psnrs), "identical": len(psnrs) - len(finite),
                "min_psnr": min(finite, default=float("inf")), "mean_psnr": sum(finite) / max(len(finite), 1),
                "last_identical": bool(torch.equal(full[-1], auto[-1]))}
        print(f"TAESD auto against TAESD full, frame by frame (8-bit WEBP, lossless): {look}")
        if args.strip:
            strip(full, auto, args.strip, psnrs)
            print(f"wrote {args.strip}: {os.path.getsize(args.strip)} bytes")
    if args.json:
        Path(args.json).write_text(json.dumps({"pixels": args.pixels, "runs": runs, "look": look}, indent=1,
                                              default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
