"""Capture overhead: the core KSampler on a captured model against the same KSampler on the plain
model, in a real ComfyUI (README "Your first painting"); and the memory a long captured run holds.

Run with ComfyUI's Python (the project venv has no ComfyUI):

    /work/comfyui/.venv/bin/python benchmarks/bench_capture.py --comfyui /work/comfyui [--quick]

(or set COMFYUI_PATH instead of --comfyui). In-process, no server: the ComfyUI checkout is put
on sys.path, ComfyUI's own argument parser is given ``--cpu``, and the pack is imported from
the project root the way ComfyUI loads a custom node (an importlib spec from its
``__init__.py`` with ``submodule_search_locations``, under a module name derived from its path).

The model is a random-weight SD1.5-layout checkpoint written by tests/host/make_checkpoint.py
(no download), kept in LATENT_PAINTER_CKPT_CACHE (default /tmp/lp_ckpt_cache) and reused; it is
loaded with ``comfy.sd.load_checkpoint_guess_config`` and the prompts are encoded with its CLIP.
Then ``nodes.KSampler().sample(...)`` runs on the loader's model and on the model the Capture node
returns (the OUTER_SAMPLE patch), same inputs (empty latent, euler / normal, cfg 7, fixed seed),
one warm-up each, then interleaved repeats (the order alternates every round so drift hits both
alike); each captured run is followed by Get Plan, as in a graph. Printed: the median time of
each, the ratio of the medians and the median of the per-round ratios (target <= 1.02), and
whether the two latents are bit-identical (asserted).

On a shared CPU the end-to-end times of a whole sampling run vary by more than the 2% the target
allows, so the patch's own work is also timed directly in the same runs: the wrapper's time
outside ComfyUI's ``CFGGuider.outer_sample``, plus the time its callback spends recording x0
(``process_latent_out`` and the copy into the run's buffer), plus Get Plan; that over the plain
median is a low-noise estimate of the same ratio. The defaults are 64x64 px and 4 steps because
a step of the random SD1.5 UNet takes seconds on this CPU (the capture costs the same share at
any step count: it is per step, plus a run's bookkeeping once).

``--memory`` (no ComfyUI needed) measures what a 1,000-step run at 1024 px (a 4x128x128 SD
latent) holds: the x0 reports go through the pack's run record (painter/engine/capture.py) as the
capture wrapper feeds them, then the plan is taken; printed are the process's peak RSS growth and
the bytes the record holds, each against the plan's own size (target <= 1x beyond transients).
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
    parser.add_argument("--memory", action="store_true",
                        help="only the memory of a 1,000-step captured run at 1024 px (no ComfyUI needed)")
    parser.add_argument("--quick", action="store_true", help="2 steps, 3 repeats each (a smoke run)")
    parser.add_argument("--size", type=int, default=64, help="image side in px (default 64)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default 4, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each sampler (default 5, --quick 3)")
    parser.add_argument("--cache", default=CACHE, help="folder of the random test checkpoint (LATENT_PAINTER_CKPT_CACHE)")
    parser.add_argument("--progress-bar", action="store_true",
                        help="keep ComfyUI's console progress bar on (off by default for both samplers: it only adds noise)")
    args = parser.parse_args(argv)
    if args.memory:
        return args
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
    """Time the capture patch's own work with wrappers that add a clock read per call, nothing else:
    the wrapper minus ComfyUI's ``CFGGuider.outer_sample`` inside it, the x0 recording in the
    callback (``latent_out`` + ``Run.record``, inside outer_sample) and Get Plan."""
    import comfy.samplers

    clock = {"wrapper": 0.0, "outer": 0.0, "record": 0.0, "get_plan": 0.0}

    def timing(function, key):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock[key] += time.perf_counter() - start

        return timed

    capture = sys.modules[f"{pack.__name__}.nodes.capture"]
    host = sys.modules[f"{pack.__name__}.nodes.host"]
    engine = sys.modules[f"{pack.__name__}.painter.capture"]
    comfy.samplers.CFGGuider.outer_sample = timing(comfy.samplers.CFGGuider.outer_sample, "outer")
    capture.CaptureWrapper.__call__ = timing(capture.CaptureWrapper.__call__, "wrapper")
    host.latent_out = timing(host.latent_out, "record")
    engine.Run.record = timing(engine.Run.record, "record")
    get_plan = pack.NODE_CLASS_MAPPINGS["LatentPainterGetPlan"]
    get_plan.get_plan = timing(get_plan.get_plan, "get_plan")
    return clock


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory(steps: int = 1000, side: int = 1024) -> int:
    """A long run's x0 reports through the run record, as the capture wrapper feeds them (SD1.5's
    process_latent_out: x / 0.18215 on a CPU copy), then the plan; memory against the plan's size."""
    sys.path.insert(0, str(ROOT.parent))
    import torch

    from latent_painter.painter.engine.capture import RunStore, plan_of_run
    from latent_painter.painter.engine.plan import LatentFormat

    shape = (1, 4, side // 8, side // 8)
    sampler_buffer = torch.randn(shape)  # the sampler's own x0 buffer, reused every step
    store = RunStore()
    before, peak_before = rss_bytes(), peak_rss_bytes()
    start = time.perf_counter()
    run = store.begin(torch.zeros(shape), torch.linspace(14.6, 0.0, steps + 1), LatentFormat("SD15", 4, 0.18215))
    for step in range(steps):
        sampler_buffer.mul_(0.999).add_(0.001)
        run.record(step, sampler_buffer.to("cpu") / 0.18215)
    run.finish(sampler_buffer / 0.18215)
    plan = plan_of_run(run, run.result, 0)
    seconds = time.perf_counter() - start
    plan_bytes = plan.originals.numel() * plan.originals.element_size() + plan.final.numel() * 4
    grown = max(peak_rss_bytes(), rss_bytes()) - max(before, peak_before)
    shared = plan.originals.untyped_storage().data_ptr() == run.buffer.untyped_storage().data_ptr()
    print(f"memory of a captured run: {steps} steps at {side}x{side} px (latent {'x'.join(map(str, shape[1:]))}), "
          f"recorded and planned in {seconds:.1f}s")
    print(f"  plan (originals + final):       {plan_bytes / 2**20:8.1f} MiB")
    print(f"  held by the run record:         {store.nbytes / 2**20:8.1f} MiB  ({store.nbytes / plan_bytes:.3f}x the plan; "
          f"the plan {'views' if shared else 'COPIES'} it)")
    print(f"  peak RSS growth of the process: {grown / 2**20:8.1f} MiB  ({grown / plan_bytes:.3f}x the plan; target <= 1x "
          f"plus transients of one latent)")
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    if args.memory:
        return memory()
    ckpt = checkpoint(args)
    start_comfyui(args)
    import torch

    import comfy.sd
    import comfy.model_management
    import comfyui_version
    import folder_paths
    import nodes

    pack = load_pack(ROOT)
    capture_node = pack.NODE_CLASS_MAPPINGS["LatentPainterCapture"]()
    get_plan_node = pack.NODE_CLASS_MAPPINGS["LatentPainterGetPlan"]()

    t0 = time.perf_counter()
    model, clip = comfy.sd.load_checkpoint_guess_config(
        str(ckpt), output_vae=False, output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings")
    )[:2]
    load_seconds = time.perf_counter() - t0
    (captured,) = capture_node.capture(model)
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a painting of a lighthouse at dusk"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = {"samples": torch.zeros([1, 4, args.size // 8, args.size // 8])}
    inputs = dict(seed=42, steps=args.steps, cfg=7.0, sampler_name="euler", scheduler="normal",
                  positive=positive, negative=negative, latent_image=latent, denoise=1.0)
    core = nodes.KSampler()

    def plain():
        return core.sample(model=model, **inputs)[0]

    def patched():
        out = core.sample(model=captured, **inputs)[0]
        (plan,) = get_plan_node.get_plan(captured, out)
        assert plan.steps == args.steps
        return out

    runs = {"plain": plain, "captured": patched}
    clock = instrument(pack)

    def timed(which):
        for key in clock:
            clock[key] = 0.0
        start = time.perf_counter()
        out = runs[which]()
        total = time.perf_counter() - start
        own = (clock["wrapper"] - clock["outer"], clock["record"], clock["get_plan"])
        return total, own, out["samples"]

    print(f"ComfyUI {comfyui_version.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {comfy.model_management.get_torch_device()}; random SD1.5 checkpoint {ckpt.name} "
          f"(loaded in {load_seconds:.0f}s); {args.size}x{args.size} px, {args.steps} steps euler/normal, cfg 7")
    plain_latent = timed("plain")[2]  # warm-up: loads the model onto the device
    captured_latent = timed("captured")[2]
    identical = plain_latent.dtype == captured_latent.dtype and torch.equal(
        plain_latent.contiguous().view(torch.int32), captured_latent.contiguous().view(torch.int32))
    times = {"plain": [], "captured": []}
    work = []
    for round_ in range(args.repeats):
        for which in (("plain", "captured") if round_ % 2 == 0 else ("captured", "plain")):
            seconds, own, samples = timed(which)
            times[which].append(seconds)
            if which == "captured":
                work.append(own)
            identical &= torch.equal(samples.contiguous().view(torch.int32), plain_latent.contiguous().view(torch.int32))
    plain_median, captured_median = statistics.median(times["plain"]), statistics.median(times["captured"])
    ratio = captured_median / plain_median
    pair_ratio = statistics.median(c / p for c, p in zip(times["captured"], times["plain"]))
    print(f"\n{'sampler':<48} {'median s':>9} {'min s':>7} {'max s':>7} {'runs':>5}")
    for label, which in (("core KSampler, loader's model", "plain"),
                         ("core KSampler, captured model (+ Get Plan)", "captured")):
        values = times[which]
        print(f"{label:<48} {statistics.median(values):>9.3f} {min(values):>7.3f} {max(values):>7.3f} {len(values):>5}")
    verdict = "pass" if ratio <= TARGET else "FAIL"
    print(f"\ncapture overhead: ratio of medians {ratio:.3f} (target <= {TARGET}) -> {verdict}; "
          f"median of per-round ratios {pair_ratio:.3f}")
    bookkeeping = statistics.median(w[0] for w in work)
    record = statistics.median(w[1] for w in work)
    planning = statistics.median(w[2] for w in work)
    extra = statistics.median(sum(w) for w in work)
    estimate = 1 + extra / plain_median
    print(f"capture work timed directly in the same runs: {record * 1e3:.2f} ms recording x0 in the callback "
          f"({record / args.steps * 1e6:.0f} us per step: process_latent_out, copy into the run's buffer) + "
          f"{bookkeeping * 1e3:.2f} ms in the wrapper around the run (format, record, result) + {planning * 1e3:.2f} ms "
          f"Get Plan = {extra * 1e3:.2f} ms -> estimated ratio {estimate:.4f} "
          f"({'pass' if estimate <= TARGET else 'FAIL'}; free of the load noise in the end-to-end times)")
    print(f"final latents bit-identical with and without Capture: {'yes' if identical else 'NO'}")
    assert identical, "the captured model's latent differs from the plain model's"
    return 0


if __name__ == "__main__":
    sys.exit(main())
