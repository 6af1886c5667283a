"""Incremental decoding with ComfyUI's own VAEs, inside the real host (ARCHITECTURE.md "Targets").

Run with the ComfyUI host's Python (it imports ``comfy`` and ``nodes`` from the checkout):

    COMFYUI_PATH=/work/comfyui LATENT_PAINTER_CKPT_CACHE=/work/ckpt_cache \\
        /work/comfyui/.venv/bin/python benchmarks/bench_host_incremental.py [--quick] [--json out.json]

Two VAEs, both built by ComfyUI 0.8.0 itself with seeded random weights (no download), both
handed to the pack through ``nodes.host.decoder_view`` exactly as Decode Frames and Render do:

- **SD1.5's KL-VAE** (``comfy.sd.VAE`` from AutoencoderKL weights: the ``first_stage_model.*`` of
  the host tests' random checkpoint when LATENT_PAINTER_CKPT_CACHE holds it, else built alike).
  Its mid-block attention and group norms see the whole latent, so the pack cannot split it:
  ``decoder_view`` gives only its decode. Measured: ``decode: incremental`` as the nodes run it
  (a VAE of unknown structure decodes every frame in full).
- **Core TAESD** (``comfy.taesd.taesd.TAESD``), loaded by core ``VAELoader`` as ``taesd`` from
  random ``taesd_encoder``/``taesd_decoder`` files written into a scratch ``vae_approx`` folder
  (0.8.0 ships TAESD variants taesd, taesdxl, taesd3 and taef1, no weights; taef2 is not among them).
  ``decoder_view`` gives its decode only too: its split (after the latent-resolution stage) missed
  the bound between checks and was slower than full decodes (README).

Frames: a stroke painting (disks of a seeded random final latent revealed one per frame, as in
bench_render_memory). Each frame's reference is its own full decode (``vae.decode`` of that latent
alone); the error is the whole-frame PSNR against it, over every frame; the time ratio is full
decodes of every frame (one call per frame) over the incremental run, both in this process. Random
weights make images without meaning: the numbers speak for the mechanism (what is cropped, what
the checks catch), not for how a trained VAE looks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST_TESTS = ROOT / "tests" / "host"
CHECKPOINT = "latent_painter_test_sd15_seed1001.safetensors"
SEED = 1001

# (pixels, frames) per VAE: the KL-VAE decodes at ~10-60 s per 256 px frame on 2 shared CPU cores.
SIZES = {"kl": (256, 8), "taesd": (512, 64)}
QUICK = {"kl": (128, 3), "taesd": (256, 24)}


def setup(scratch: str) -> None:
    """Import paths: the ComfyUI checkout (CPU mode), the host-test tooling, and the pack as the
    package ``latent_painter`` (a link in ``scratch``, as ComfyUI's custom_nodes would hold it)."""
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy or not (Path(comfy) / "main.py").is_file():
        raise SystemExit("set COMFYUI_PATH to a ComfyUI checkout and run this with its Python")
    sys.path.insert(0, str(Path(comfy).resolve()))
    sys.path.insert(0, str(HOST_TESTS))
    link = Path(scratch) / "latent_painter"
    link.symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, scratch)
    from comfy.cli_args import args

    args.cpu = True


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
        source = f"first_stage_model of {path.name}"
    else:
        sd = build_state_dict(SEED, "kl_vae")
        source = f"random AutoencoderKL, seed {SEED}"
    vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae, source


def core_taesd(folder: str):
    """Core VAELoader's ``taesd`` from random weight files in a scratch vae_approx folder."""
    import folder_paths
    import nodes
    from make_checkpoint import build_state_dict
    from safetensors.torch import save_file

    sd = build_state_dict(SEED, "taesd")
    for part in ("encoder", "decoder"):
        prefix = f"taesd_{part}."
        save_file({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)},
                  os.path.join(folder, f"taesd_{part}.safetensors"))
    folder_paths.add_model_folder_path("vae_approx", folder, is_default=True)
    if "taesd" not in nodes.VAELoader.vae_list(nodes.VAELoader):
        raise SystemExit("core VAELoader does not list 'taesd' after writing its files")
    (vae,) = nodes.VAELoader().load_vae("taesd")
    return vae, f"core VAELoader 'taesd' (comfy.taesd.taesd.TAESD), random weights seed {SEED}"


def painting(pixels: int, frames: int):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_render_memory import LazyPainting

    return LazyPainting(frames, pixels // 8, seed=3, channels=4).materialise()


def measure(vae, name: str, source: str, latents, modes: tuple[str, ...]) -> list[dict]:
    import torch
    from latent_painter.nodes import host
    from latent_painter.painter.render.decoding import decode_frames
    from latent_painter.painter.render.spans import IncrementalOptions, IncrementalStats, psnr

    view = host.decoder_view(vae)
    options = IncrementalOptions()
    started = time.perf_counter()
    reference = torch.cat([vae.decode(latents[i : i + 1]).float() for i in range(latents.shape[0])])
    full_seconds = time.perf_counter() - started
    rows = []
    for mode in modes:
        stats = IncrementalStats()
        started = time.perf_counter()
        images = decode_frames(view, latents, 1, mode=mode, options=options, stats=stats)
        seconds = time.perf_counter() - started
        psnrs = [psnr(images[i], reference[i]) for i in range(latents.shape[0])]
        rows.append({
            "vae": name, "source": source, "staged": stats.strategy != "full", "pixels": int(latents.shape[-1]) * 8,
            "frames": int(latents.shape[0]), "mode": mode, "bound_db": options.min_psnr,
            "full_seconds": full_seconds, "incremental_seconds": seconds, "speedup": full_seconds / seconds,
            "min_psnr": min(psnrs), "frames_below_bound": sum(p < options.min_psnr for p in psnrs),
            "last_identical": bool(torch.equal(images[-1], reference[-1])),
            "full_decodes": stats.full_decodes, "crop_decodes": stats.crop_decodes,
            "crop_share": stats.crop_area / max(stats.frames, 1), "fallback": stats.fallback,
            "summary": stats.summary(),
        })
        print(json.dumps(rows[-1]), flush=True)
    return rows


def db(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.1f}"


def table(rows: list[dict]) -> list[str]:
    lines = ["| VAE | split by the pack | px | frames | mode | full decodes s | incremental s | speed-up | min PSNR dB "
             "(bound) | frames below bound | last frame identical | full / crop decodes | what it did |",
             "|---|---|---:|---:|---|---:|---:|---:|---|---:|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['vae']} | {'yes' if r['staged'] else 'no (opaque)'} | {r['pixels']} | {r['frames']} | {r['mode']} | "
            f"{r['full_seconds']:.1f} | {r['incremental_seconds']:.1f} | {r['speedup']:.2f}x | "
            f"{db(r['min_psnr'])} ({r['bound_db']:g}) | {r['frames_below_bound']} | "
            f"{'yes' if r['last_identical'] else 'NO'} | {r['full_decodes']} / {r['crop_decodes']} | "
            f"{r['fallback'] or 'crops cover %.0f%% of a frame on average' % (100 * r['crop_share'])} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the host test's run)")
    parser.add_argument("--only", choices=("kl", "taesd"), default=None, help="measure one VAE")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else SIZES
    with tempfile.TemporaryDirectory() as scratch:
        setup(scratch)
        import torch
        torch.set_grad_enabled(False)
        rows = []
        if args.only in (None, "taesd"):
            folder = os.path.join(scratch, "vae_approx")
            os.makedirs(folder)
            vae, source = core_taesd(folder)
            rows += measure(vae, "core TAESD", source, painting(*sizes["taesd"]), ("incremental",))
        if args.only in (None, "kl"):
            vae, source = kl_vae()
            rows += measure(vae, "SD1.5 KL-VAE", source, painting(*sizes["kl"]), ("incremental",))
    print()
    print("\n".join(table(rows)))
    for r in rows:
        print(f"- {r['vae']} {r['mode']}: {r['summary']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
