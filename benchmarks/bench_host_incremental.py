"""Incremental decoding with ComfyUI's own VAEs, inside the real host (ARCHITECTURE.md "Targets", render speed).

Run with the ComfyUI host's Python (it imports ``comfy`` and ``nodes`` from the checkout):

    COMFYUI_PATH=/work/comfy/ComfyUI LATENT_PAINTER_CKPT_CACHE=/work/ckpt_cache \\
        /work/comfy/ComfyUI/.venv/bin/python benchmarks/bench_host_incremental.py [--quick] [--only taesd|kl]
        [--frames 1000] [--windows 4] [--window 32] [--render] [--json rows.json] [--plot host.png]

The VAEs are built by ComfyUI 0.8.0 itself and reach the pack through ``nodes.host.decoder_view``, as
Decode Frames and Render get them:

- **core TAESD with real weights**: the real taef2 pair (the pack's weights lookup; never shipped),
  its keys prefixed ``taesd_encoder.`` / ``taesd_decoder.``, written to a scratch ``models/vae``
  file and loaded by the core ``VAELoader`` as a user's file there would be: a 32-channel
  ``comfy.taesd.taesd.TAESD``. Core TAESD has no group-norm branch, so taef2's is dropped and the
  images differ from taef2's own; the trained convolutions, which decide how far a change spreads,
  are the real ones.
- **SD1.5's KL-VAE** (random weights: the ``first_stage_model.*`` of the host tests' random
  checkpoint when LATENT_PAINTER_CKPT_CACHE holds it, else built alike).

Painting: a photo's stand-in plan (painter/tools/standin.py), the photos encoded by the VAE's own
encoder, painted with the default ``Strokes()`` to ``--frames`` frames. Each row decodes the whole
painting as the nodes do (``decode: auto``; the KL-VAE also ``incremental``) and compares sampled runs
of frames with their full decodes (benchmarks/incremental_runs.py). ``--render`` also times the
Render node's whole run at 512 px both ways (``decode: full`` and ``auto``, MP4 into a scratch output
folder), wall clock, in this process.
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
HOST_TESTS = ROOT / "tests" / "host"
CHECKPOINT = "latent_painter_test_sd15_seed1001.safetensors"
SEED = 1001
TAESD_FILE = "taef2_as_core_taesd.safetensors"
# (decoder, pixels): frames, and the decode modes measured
SIZES = {("core TAESD (taef2 weights)", 512): 1000, ("core TAESD (taef2 weights)", 1024): 1000,
         ("SD1.5 KL-VAE (random)", 256): 500, ("SD1.5 KL-VAE (random)", 512): 500}
QUICK = {("core TAESD (taef2 weights)", 256): 400, ("SD1.5 KL-VAE (random)", 128): 12}
TARGETS = {("core TAESD (taef2 weights)", 512): 3.0, ("core TAESD (taef2 weights)", 1024): 5.0,
           ("SD1.5 KL-VAE (random)", 512): 2.0}


def setup(scratch: str) -> None:
    """Import paths: the ComfyUI checkout (CPU mode), the host-test tooling, the benchmarks, and the
    pack as the package ``latent_painter`` (a link in ``scratch``, as custom_nodes would hold it)."""
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy or not (Path(comfy) / "main.py").is_file():
        raise SystemExit("set COMFYUI_PATH to a ComfyUI checkout and run this with its Python")
    sys.path[:0] = [str(Path(comfy).resolve()), str(HOST_TESTS), str(ROOT / "benchmarks")]
    (Path(scratch) / "latent_painter").symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, scratch)
    from comfy.cli_args import args

    args.cpu = True


def core_taesd(folder: str):
    """Core VAELoader's TAESD from the real taef2 pair written, keys prefixed, into ``folder`` (a
    ``models/vae`` folder registered for this process)."""
    import folder_paths
    import nodes
    from make_checkpoint import taesd_state_dict

    from latent_painter.painter.tools.weights import find_weights

    taesd_state_dict(find_weights(None, families=("taef2",)).folder, os.path.join(folder, TAESD_FILE))
    folder_paths.add_model_folder_path("vae", folder, is_default=True)
    (vae,) = nodes.VAELoader().load_vae(TAESD_FILE)
    return vae


def kl_vae():
    """ComfyUI's VAE for SD1.5 weights (random), as CheckpointLoaderSimple would build it."""
    import comfy.sd
    from make_checkpoint import build_state_dict

    cache = os.environ.get("LATENT_PAINTER_CKPT_CACHE")
    path = Path(cache) / CHECKPOINT if cache else None
    if path is not None and path.is_file():
        from safetensors import safe_open

        prefix = "first_stage_model."
        with safe_open(str(path), framework="pt") as f:
            sd = {key[len(prefix):]: f.get_tensor(key) for key in f.keys() if key.startswith(prefix)}
    else:
        sd = build_state_dict(SEED, "kl_vae")
    vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae


def painting(vae, pixels: int, frames: int):
    from bench_incremental import stroke_painting

    def encode(images):
        return vae.encode(images).float()

    return stroke_painting(encode, pixels, frames)


def render_run(vae, latents, mode: str, out_dir: str) -> dict:
    """The Render node's whole run, in process, into ``out_dir``: wall clock and what it reported."""
    import folder_paths

    from latent_painter.nodes.render import LatentPainterRender

    folder_paths.set_output_directory(out_dir)
    started = time.perf_counter()
    result = LatentPainterRender().render(
        frames={"samples": latents}, vae=vae, filename_prefix=f"bench/{mode}", format="mp4", fps=50.0, quality=80,
        hold_first=0, hold_last=24, pingpong=False, white_canvas=False, stroke_map_side_by_side=False, chunk_size=4,
        decode=mode)
    return {"mode": mode, "seconds": time.perf_counter() - started, "frames": result["result"][1],
            "report": result["ui"]["text"][0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the host test's run)")
    parser.add_argument("--only", choices=("taesd", "kl"), default=None, help="measure one VAE")
    parser.add_argument("--frames", type=int, default=0, help="frames of every painting (0: the table's)")
    parser.add_argument("--windows", type=int, default=4, help="runs of frames decoded in full per row")
    parser.add_argument("--window", type=int, default=32, help="frames per run")
    parser.add_argument("--render", action="store_true", help="time the Render node's whole run at 512 px both ways")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--plot", default=None, help="PNG of per-frame PSNR and speed (not committed)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else SIZES
    windows, window = (2, 8) if args.quick else (args.windows, args.window)
    with tempfile.TemporaryDirectory() as scratch:
        setup(scratch)
        import torch
        from incremental_runs import measure, plot, report

        from latent_painter.nodes import host
        from latent_painter.painter.render.spans import IncrementalOptions

        torch.set_grad_enabled(False)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}", flush=True)
        vaes = {}
        if args.only in (None, "taesd"):
            os.makedirs(os.path.join(scratch, "vae"))
            vaes["core TAESD (taef2 weights)"] = core_taesd(os.path.join(scratch, "vae"))
        if args.only in (None, "kl"):
            vaes["SD1.5 KL-VAE (random)"] = kl_vae()
        rows, renders = [], []
        for (label, pixels), frames in sizes.items():
            if label not in vaes:
                continue
            vae = vaes[label]
            latents = painting(vae, pixels, args.frames or frames)
            modes = ("auto", "incremental") if label.startswith("SD1.5") else ("auto",)
            for mode in modes:
                row = measure(label, host.decoder_view(vae), vae.decode, latents, windows, window, mode=mode)
                row["mode"] = mode
                rows.append(row)
            if args.render and pixels == 512:
                renders += [{"vae": label, **render_run(vae, latents, mode, os.path.join(scratch, "out"))}
                            for mode in ("full", "auto")]
        options = IncrementalOptions()
        lines = report(rows, options, TARGETS)
        for run in renders:
            print(f"Render node, {run['vae']}, 512 px, decode {run['mode']}: {run['seconds']:.0f} s for {run['frames']} "
                  f"frames played; {run['report']}")
        if args.plot:
            plot(rows, args.plot, options, "ComfyUI's VAEs in the real host")
    if args.json:
        Path(args.json).write_text(json.dumps({"table": lines, "renders": renders, "rows": [
            {key: value for key, value in row.items() if key not in ("stats", "psnr", "positions")}
            | {"strategy": row["stats"].strategy, "fallback": row["stats"].fallback,
               "crop_decodes": row["stats"].crop_decodes, "full_decodes": row["stats"].full_decodes,
               "failed_checks": row["stats"].failed_checks, "frames_below_bound": sum(s < options.min_psnr for s in row["psnr"]),
               "bound_db": options.min_psnr}
            for row in rows]}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
