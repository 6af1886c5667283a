"""Capture overhead: Latent Painter Sampler against the core KSampler, in a real ComfyUI (DESIGN §4, issue 4).

Run with ComfyUI's Python (the project venv has no ComfyUI):

    /work/comfyui/.venv/bin/python benchmarks/bench_capture.py --comfyui /work/comfyui [--quick]

(or set COMFYUI_PATH instead of --comfyui). In-process, no server: the ComfyUI checkout is put
on sys.path, ComfyUI's own argument parser is given ``--cpu``, and the pack is imported from
the project root the way ComfyUI loads a custom node (an importlib spec from its
``__init__.py`` with ``submodule_search_locations``, under a module name derived from its path).

The model is a random-weight SD1.5-layout checkpoint written by tests/host/make_checkpoint.py
(no download), kept in LATENT_PAINTER_CKPT_CACHE (default /tmp/lp_ckpt_cache) and reused; it is
loaded with ``comfy.sd.load_checkpoint_guess_config`` and the prompts are encoded with its CLIP.
Then ``nodes.KSampler().sample(...)`` and ``LatentPainterSampler().sample(...)`` run on the same
inputs (empty latent, euler / normal, cfg 7, fixed seed), one warm-up each, then interleaved
repeats (the order alternates every round so drift hits both alike). Printed: the median time
of each, the ratio of the medians and the median of the per-round ratios (target <= 1.02),
and whether the two latents are bit-identical (asserted).

On a shared CPU the end-to-end times of a whole sampling run vary by more than the 2% the target
allows, so the pack's own work is also timed directly in the same runs: the node's time outside
``comfy.sample.sample`` plus the time its callback spends capturing x0 (the StepRecorder), minus
the core node's time outside ``comfy.sample.sample``; that over the core median is a low-noise
estimate of the same ratio. The defaults are 64x64 px and 4 steps because a step of the random
SD1.5 UNet takes seconds on this CPU (the capture costs the same share at any step count: it is
per step, plus building the plan once).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE_CHECKPOINT = ROOT / "tests" / "host" / "make_checkpoint.py"
CACHE = os.environ.get("LATENT_PAINTER_CKPT_CACHE", "/tmp/lp_ckpt_cache")
SEED_CKPT = 1001  # the host tests' checkpoint A: reused when the cache holds it
TARGET = 1.02


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"), help="ComfyUI checkout (or COMFYUI_PATH)")
    parser.add_argument("--quick", action="store_true", help="2 steps, 3 repeats each (a smoke run)")
    parser.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default 4, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each sampler (default 5, --quick 3)")
    parser.add_argument("--cache", default=CACHE, help="folder of the random test checkpoint (LATENT_PAINTER_CKPT_CACHE)")
    parser.add_argument("--progress-bar", action="store_true",
                        help="keep ComfyUI's console progress bar on (off by default for both samplers: it only adds noise)")
    args = parser.parse_args(argv)
    if not args.comfyui or not (Path(args.comfyui) / "main.py").is_file():
        parser.error("give --comfyui (or COMFYUI_PATH): a ComfyUI checkout with main.py")
    args.comfyui = str(Path(args.comfyui).resolve())
    args.steps = args.steps or (2 if args.quick else 4)
    args.repeats = args.repeats or (3 if args.quick else 5)
    return args


def checkpoint(args) -> Path:
    """The cached random SD1.5 checkpoint; written once with make_checkpoint.py (as the host tests do)."""
    path = Path(args.cache) / f"latent_painter_test_sd15_seed{SEED_CKPT}.safetensors"
    if not path.exists():
        print(f"writing {path} with {MAKE_CHECKPOINT.name} (~1.6 GB, once) ...", flush=True)
        env = dict(os.environ, COMFYUI_PATH=args.comfyui)
        env.pop("PYTHONPATH", None)
        subprocess.run([sys.executable, str(MAKE_CHECKPOINT), str(path), str(SEED_CKPT)],
                       cwd=args.comfyui, env=env, check=True)
    return path


def start_comfyui(args):
    """Import ComfyUI for headless, in-process use on the CPU."""
    sys.path.insert(0, args.comfyui)
    os.chdir(args.comfyui)
    sys.argv = [os.path.join(args.comfyui, "main.py"), "--cpu"]  # ComfyUI's parser reads sys.argv
    import comfy.options

    comfy.options.enable_args_parsing()
    from comfy.cli_args import args as comfy_args

    assert comfy_args.cpu, "ComfyUI did not take --cpu"
    import comfy.utils
    import folder_paths  # noqa: F401  (as under ComfyUI: packs may use it at load time)

    comfy.utils.set_progress_bar_enabled(args.progress_bar)


def load_pack(root: Path):
    """The pack as ComfyUI's ``load_custom_node`` loads a folder: spec from ``__init__.py``."""
    name = str(root).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def instrument(pack) -> dict:
    """Time ``comfy.sample.sample`` (both nodes call it) and the pack's capture (the StepRecorder's
    callback and plan building) with wrappers that add a clock read per call, nothing else."""
    import comfy.sample

    clock = {"sample": 0.0, "capture": 0.0}

    def timing(function, key):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock[key] += time.perf_counter() - start

        return timed

    recorder = sys.modules[f"{pack.__name__}.nodes.sampling"].StepRecorder
    comfy.sample.sample = timing(comfy.sample.sample, "sample")
    recorder.__call__ = timing(recorder.__call__, "capture")  # runs inside comfy.sample.sample
    return clock


def main(argv=None) -> int:
    args = parse(argv)
    ckpt = checkpoint(args)
    start_comfyui(args)
    import torch

    import comfy.sd
    import comfy.model_management
    import comfyui_version
    import folder_paths
    import nodes

    pack = load_pack(ROOT)
    ours_cls = pack.NODE_CLASS_MAPPINGS["LatentPainterSampler"]

    t0 = time.perf_counter()
    model, clip = comfy.sd.load_checkpoint_guess_config(
        str(ckpt), output_vae=False, output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings")
    )[:2]
    load_seconds = time.perf_counter() - t0
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a painting of a lighthouse at dusk"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = {"samples": torch.zeros([1, 4, args.size // 8, args.size // 8])}
    inputs = dict(model=model, seed=42, steps=args.steps, cfg=7.0, sampler_name="euler", scheduler="normal",
                  positive=positive, negative=negative, latent_image=latent, denoise=1.0)

    core, ours = nodes.KSampler(), ours_cls()
    runs = {"core": lambda: core.sample(**inputs)[0], "ours": lambda: ours.sample(**inputs)[0]}
    clock = instrument(pack)

    def timed(which):
        clock.update(sample=0.0, capture=0.0)
        start = time.perf_counter()
        out = runs[which]()
        total = time.perf_counter() - start
        # the node's own work: its time outside comfy.sample.sample, plus the capture inside the callback
        work = (total - clock["sample"], clock["capture"])
        return total, work, out["samples"]

    print(f"ComfyUI {comfyui_version.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {comfy.model_management.get_torch_device()}; random SD1.5 checkpoint {ckpt.name} "
          f"(loaded in {load_seconds:.0f}s); {args.size}x{args.size} px, {args.steps} steps euler/normal, cfg 7")
    core_latent = timed("core")[2]  # warm-up: loads the model onto the device
    ours_latent = timed("ours")[2]
    identical = core_latent.dtype == ours_latent.dtype and torch.equal(
        core_latent.contiguous().view(torch.int32), ours_latent.contiguous().view(torch.int32))
    times = {"core": [], "ours": []}
    work = {"core": [], "ours": []}
    for round_ in range(args.repeats):
        for which in (("core", "ours") if round_ % 2 == 0 else ("ours", "core")):
            seconds, glue, samples = timed(which)
            times[which].append(seconds)
            work[which].append(glue)
            identical &= torch.equal(samples.view(torch.int32), core_latent.view(torch.int32))
    core_median, ours_median = statistics.median(times["core"]), statistics.median(times["ours"])
    ratio = ours_median / core_median
    pair_ratio = statistics.median(o / c for o, c in zip(times["ours"], times["core"]))
    print(f"\n{'sampler':<44} {'median s':>9} {'min s':>7} {'max s':>7} {'runs':>5}")
    for label, which in (("core KSampler (nodes.KSampler)", "core"), ("Latent Painter Sampler (captures the plan)", "ours")):
        values = times[which]
        print(f"{label:<44} {statistics.median(values):>9.3f} {min(values):>7.3f} {max(values):>7.3f} {len(values):>5}")
    verdict = "pass" if ratio <= TARGET else "FAIL"
    print(f"\ncapture overhead: ratio of medians {ratio:.3f} (target <= {TARGET}) -> {verdict}; "
          f"median of per-round ratios {pair_ratio:.3f}")
    glue = statistics.median(o[0] - c[0] for o, c in zip(work["ours"], work["core"]))
    callback = statistics.median(o[1] for o in work["ours"])
    extra = statistics.median(o[0] + o[1] - c[0] for o, c in zip(work["ours"], work["core"]))
    estimate = 1 + extra / core_median
    print(f"capture work timed directly in the same runs: {callback * 1e3:.2f} ms in the sampler callback "
          f"({callback / args.steps * 1e6:.0f} us per step: copy x0, process_latent_out) + {glue * 1e3:.2f} ms "
          f"once per run outside comfy.sample.sample beyond KSampler's own (schedule, plan) = {extra * 1e3:.2f} ms "
          f"-> estimated ratio {estimate:.4f} ({'pass' if estimate <= TARGET else 'FAIL'}; free of the load noise "
          f"in the end-to-end times)")
    print(f"final latents bit-identical to KSampler's: {'yes' if identical else 'NO'}")
    assert identical, "Latent Painter Sampler's latent differs from KSampler's"
    return 0


if __name__ == "__main__":
    sys.exit(main())
