"""Peak memory of rendering long paintings straight to MP4/WEBP (ARCHITECTURE.md "Targets", memory).

Run:  .venv/bin/python benchmarks/bench_render_memory.py [--quick] [--cases ...] [--decode full|incremental]
      [--jobs N] [--plot out.png] [--json runs.jsonl]

Target (must show): 1,000 frames at 512x512 rendered to MP4 with peak RSS <= 1.25x the peak of a
100-frame render of the same painting, and <= 1 GiB beyond the process's idle RSS; and the file
grows while the render runs.

What runs: ``painter.sink.render`` over ``painter.decoding.decoded_chunks`` (the code the Render node
calls), chunks of 4 latents at 256 px and 2 at 512 px (see CHUNKS), white canvas and a stroke map beside
the frames off, holds 24 at the end. Every case is ONE whole render in its own process, never pieced
together from parts. ``--decode`` picks the Render node's ``decode`` for the taef2 cases:
``incremental`` (the default here: taef2 decodes ~1-3.5 s per 256-512 px frame on 2 shared CPU
cores, so 3,000 full decodes alone take over an hour; incremental decoding keeps the default run
near the time budget) or ``full`` (every frame decoded whole, the slowest path and the one with the
largest decoder activations per call). Incremental decoding holds one verified span of
``check_every`` (32) decoded frames, so its memory is bounded by that, not by the frame count.

The painting: a synthetic stroke painting made chunk by chunk (:class:`LazyPainting`): a final
latent (seeded noise) is revealed disk by disk on a zero canvas; every latent pixel has the frame
at which a stroke first covers it, and frame i is ``where(reveal <= i, final, canvas)``. So the
input costs one latent, not N: what is measured is what the render holds. A real Paint output is
a LATENT batch ComfyUI holds in its node cache whatever node reads it (float32: 1,000 frames of
32x64x64 are 0.5 GiB); the ``held`` cases materialise the whole batch first to show that cost on
top (their "beyond idle" includes it).

Decoders: ``taef2`` (the real TAESD weights for the FLUX.2 latent space, pure torch, 32 channels),
the default cases; ``linear`` (the latent -> RGB least-squares projection upsampled 8x: same frame
sizes and chunk flow through compositing, quantisation and the encoders, no activations) for quick
runs of the pipeline alone (``--quick``, the ``l*`` cases).

How it is measured: each case runs in a fresh subprocess (this script with --case). The child
imports, loads the decoder, decodes one chunk to warm up (oneDNN primitives, thread pools), then
reads VmRSS as its idle RSS and resets the peak counter (``echo 5 > /proc/self/clear_refs``); a
thread samples the partial output file's size while the render runs; after the render it reads
VmHWM. Children run with ``MALLOC_MMAP_THRESHOLD_=65536`` so freed large buffers go back to the
kernel at once (RSS then tracks live tensors instead of glibc's cached heap).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from child_memory import emit_result, reset_peak, spawn_case, status_kib

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAESD = os.environ.get("LATENT_PAINTER_TAESD", str(ROOT.parent / "shared" / "data" / "taesd"))
CHANNELS = 32
# Latents per decoder call, per frame size: taef2's activations on the CPU take ~67 MiB per 256x256
# frame (a chunk of 16 measured 1,073 MiB beyond idle), four times that at 512x512; these keep one
# chunk's decode near 270 MiB (256 px) and 540 MiB (512 px), as the Render node's chunk_size would.
CHUNKS = {256: 4, 512: 2}
HOLD_LAST = 24

# name: (frames, pixels, format, decoder, held)
CASES = {
    "t256x100": (100, 256, "mp4", "taef2", False),
    "t256x1000": (1000, 256, "mp4", "taef2", False),
    "t256x3000": (3000, 256, "mp4", "taef2", False),
    "t512x100": (100, 512, "mp4", "taef2", False),
    "t512x1000": (1000, 512, "mp4", "taef2", False),
    "t512x100w": (100, 512, "webp", "taef2", False),
    "l256x100": (100, 256, "mp4", "linear", False),
    "l256x1000": (1000, 256, "mp4", "linear", False),
    "l256x3000": (3000, 256, "mp4", "linear", False),
    "l512x100": (100, 512, "mp4", "linear", False),
    "l512x1000": (1000, 512, "mp4", "linear", False),
    "l512x100w": (100, 512, "webp", "linear", False),
    "l512x1000w": (1000, 512, "webp", "linear", False),
    "l512x1000h": (1000, 512, "mp4", "linear", True),
    "t512x1000h": (1000, 512, "mp4", "taef2", True),
}
QUICK = ("t256x100", "l256x100", "l256x1000", "l512x100", "l512x1000", "l512x100w", "l512x1000w", "l512x1000h")
# The cases, all with the real taef2 decoder: 100, 1,000 and 3,000 frames at 256 px, 100 and
# 1,000 at 512 px, MP4.
DEFAULT = ("t256x100", "t256x1000", "t256x3000", "t512x100", "t512x1000")


class LazyPainting:
    """Latent frames ``[N,C,h,w]`` made on demand (``shape``, ``dim()`` and slicing, which is all
    :func:`painter.decoding.decoded_chunks` uses): disks of final latent revealed one after another."""

    def __init__(self, frames: int, side: int, seed: int = 0, channels: int = CHANNELS):
        import torch

        generator = torch.Generator().manual_seed(seed)
        self.final = torch.randn(channels, side, side, generator=generator)
        reveal = torch.full((side, side), frames - 1, dtype=torch.int64)
        ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
        strokes = max(1, frames - 1)
        centres = torch.randint(0, side, (strokes, 2), generator=generator)
        radii = torch.randint(1, max(2, side // 8), (strokes,), generator=generator)
        # Later strokes first, so each pixel keeps the earliest stroke that covers it.
        for index in range(strokes - 1, -1, -1):
            y, x = centres[index].tolist()
            inside = (ys - y) ** 2 + (xs - x) ** 2 <= int(radii[index]) ** 2
            reveal[inside] = index + 1
        self.reveal = reveal
        self.shape = (frames, channels, side, side)

    def dim(self) -> int:
        return 4

    def __getitem__(self, index):
        import torch

        if isinstance(index, int):
            index = slice(index, index + 1)
            single = True
        else:
            single = False
        start, stop, _ = index.indices(self.shape[0])
        painted = self.reveal[None] <= torch.arange(start, stop)[:, None, None]
        frames = torch.where(painted[:, None], self.final[None], torch.zeros(()))
        return frames[0] if single else frames

    def materialise(self):
        return self[0 : self.shape[0]]


def linear_decoder(channels: int, side: int):
    """Latent -> RGB through a fixed projection, bilinear-upsampled 8x, plus a fixed grain so the
    encoders have texture to code: frame sizes of a real VAE, no activations."""
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(1)
    weights = torch.randn(channels, 3, generator=generator) / channels**0.5
    grain = 0.08 * torch.randn(8 * side, 8 * side, 3, generator=generator)

    def decode(latents):
        rgb = torch.einsum("nchw,cr->nrhw", latents.to(torch.float32), weights)
        rgb = F.interpolate(rgb, scale_factor=8, mode="bilinear", align_corners=False)
        return torch.sigmoid(rgb).permute(0, 2, 3, 1).add(grain).clamp(0, 1)

    return decode


def run_case(name: str, taesd: str, out_dir: str, decode_mode: str = "incremental") -> dict:
    import gc

    import torch

    from latent_painter.painter.render import decoding, sink, writers
    from latent_painter.painter.render.spans import IncrementalStats

    frames, pixels, fmt, decoder_name, held = CASES[name]
    torch.set_grad_enabled(False)
    if decoder_name == "taef2":
        from latent_painter.painter.tools.taesd import TinyAutoencoder

        vae = TinyAutoencoder.from_folder(taesd)
        decoder = vae.decoder_view()  # what the Render node decodes the pack's TAESD with
    else:
        decoder = linear_decoder(CHANNELS, pixels // 8)
        decode_mode = "full"
    painting = LazyPainting(frames, pixels // 8)
    chunk = CHUNKS[pixels]
    # The decoder's first allocations (and the staged path's, as the render's first frames make them).
    warm = list(decoding.decoded_chunks(decoder, painting[0:2].contiguous(), chunk, mode=decode_mode))
    del warm
    gc.collect()
    idle = status_kib("VmRSS")
    reset_peak()
    latents = painting.materialise() if held else painting
    held_bytes = latents.numel() * latents.element_size() if held else 0

    path = os.path.join(out_dir, f"{name}.{fmt}")
    partial = sink.temporary_path(path)
    samples: list[tuple[float, int, int]] = []
    done = threading.Event()
    started = time.perf_counter()

    decoded = [0]

    def sample():
        while not done.wait(0.25):
            size = os.path.getsize(partial) if os.path.exists(partial) else 0
            samples.append((time.perf_counter() - started, size, status_kib("VmRSS"), decoded[0]))

    def progress(done_frames, _total):
        decoded[0] = done_frames

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        stats = IncrementalStats()
        chunks = decoding.decoded_chunks(decoder, latents, chunk, progress=progress, mode=decode_mode, stats=stats)
        rendered = sink.render([chunks], path, writers.Encoding(fmt, 50.0, 80), hold_last=HOLD_LAST)
    finally:
        done.set()
        watcher.join()
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM")
    final_size = os.path.getsize(path)
    os.remove(path)
    return {
        "case": name, "frames": frames, "pixels": pixels, "format": fmt, "decoder": decoder_name, "held": held,
        "decode": decode_mode, "idle_bytes": idle * 1024, "peak_bytes": peak * 1024, "held_bytes": held_bytes,
        "seconds": seconds, "played": rendered.frames, "chunk": chunk, "file_bytes": final_size,
        "growth": [(round(t, 2), size, rss * 1024, frames_done) for t, size, rss, frames_done in samples],
        "incremental": stats.summary(),
    }


def spawn(name: str, args) -> dict:
    with tempfile.TemporaryDirectory(dir=args.out_dir) as scratch:
        return spawn_case(__file__, name, ["--taesd", args.taesd, "--out-dir", scratch, "--decode", args.decode])


def mib(value: float) -> float:
    return value / 2**20


def growth_summary(r: dict) -> str:
    sizes = [sample[1] for sample in r["growth"] if sample[1] > 0]
    distinct = sorted(set(sizes))
    if not distinct:
        return "no sample"
    return f"{len(distinct)} sizes, {distinct[0] / 1024:,.0f}..{distinct[-1] / 1024:,.0f} KiB before the end"


def growth_steps(r: dict, most: int = 12) -> str:
    """The partial file's size each time it changed while rendering: ``t s (frames decoded): KiB``."""
    steps, last = [], -1
    for sample in r["growth"]:
        t, size = sample[0], sample[1]
        frames_done = sample[3] if len(sample) > 3 else None
        if size != last:
            at = f"{t:.0f} s" + (f" ({frames_done} fr)" if frames_done is not None else "")
            steps.append(f"{at}: {size:,} B" if size < 10240 else f"{at}: {size / 1024:,.0f} KiB")
            last = size
    if len(steps) > most:
        keep = [round(i * (len(steps) - 1) / (most - 1)) for i in range(most)]
        steps = [steps[i] for i in sorted(set(keep))]
    return ", ".join(steps) + f" -> final {r['file_bytes'] / 1024:,.0f} KiB"



def table(results: dict[str, dict]) -> list[str]:
    base = baselines(results)
    lines = ["| case | decoder | decode | frames | px | chunk | format | input held | idle RSS MiB | peak RSS MiB "
             "| peak / 100-frame peak | beyond idle MiB | file KiB | file grew during the render | s |",
             "|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in results.items():
        reference = base.get(group(r))
        ratio = f"{r['peak_bytes'] / reference['peak_bytes']:.3f}" if reference else "n/a"
        lines.append(
            f"| {r['case']} | {r['decoder']} | {r.get('decode', 'full')} | {r['frames']:,} | {r['pixels']} | "
            f"{r.get('chunk', 16)} | {r['format']} | "
            f"{'%.0f MiB' % mib(r['held_bytes']) if r['held'] else 'no (lazy)'} | {mib(r['idle_bytes']):.0f} | "
            f"{mib(r['peak_bytes']):.0f} | {ratio} | {mib(r['peak_bytes'] - r['idle_bytes']):.0f} | "
            f"{r['file_bytes'] / 1024:,.0f} | {growth_summary(r)} | {r['seconds']:.0f} |")
    return lines


def group(r: dict) -> tuple:
    """Runs of the same painting and settings but for the frame count."""
    return r["decoder"], r.get("decode", "full"), r["pixels"], r.get("chunk", 16), r["format"], r["held"]


def baselines(results: dict[str, dict]) -> dict[tuple, dict]:
    """The 100-frame run of each group."""
    return {group(r): r for r in results.values() if r["frames"] == 100}


def verdicts(results: dict[str, dict]) -> list[str]:
    """Peak of the longest MP4 render against the 100-frame one, per decoder, size and chunk."""
    out = []
    groups: dict[tuple, dict[int, dict]] = {}
    for r in results.values():
        if r["format"] == "mp4" and not r["held"]:
            groups.setdefault((r["decoder"], r.get("decode", "full"), r["pixels"], r.get("chunk", 16)), {})[r["frames"]] = r
    for (decoder, decode, pixels, chunk), by_frames in sorted(groups.items()):
        if 100 not in by_frames:
            continue
        for frames in sorted(f for f in by_frames if f > 100):
            a, b = by_frames[100], by_frames[frames]
            ratio = b["peak_bytes"] / a["peak_bytes"]
            beyond = mib(b["peak_bytes"] - b["idle_bytes"])
            ok = ratio <= 1.25 and beyond <= 1024
            out.append(f"{decoder} ({decode} decode) {pixels}px chunk {chunk} MP4: peak({frames:,}) / peak(100) = "
                       f"{ratio:.3f} (<= 1.25), "
                       f"{beyond:.0f} MiB beyond idle (<= 1024) -> {'pass' if ok else 'FAIL'}")
    return out


def plot(results: dict[str, dict], path: str) -> None:
    """Two panels, drawn with Pillow (matplotlib is not a dependency): each case's peak RSS split
    into idle and beyond-idle, with its ratio to the 100-frame peak; and, for the longest case, the
    partial file's size and the process's RSS over the render."""
    from PIL import Image, ImageDraw

    width, height = 1280, 560
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    names = list(results)
    base = baselines(results)
    top = max(mib(r["peak_bytes"]) for r in results.values()) * 1.15 or 1
    left, ceiling, floor, panel = 70, 50, 470, 540
    draw.text((left, 10), "peak RSS per render (MiB): grey = idle (imports, weights, warm-up), red = beyond idle", fill="black")
    draw.text((left, 24), "label: peak / peak of the 100-frame render of the same painting", fill="black")
    draw.line((left, ceiling, left, floor), fill="black")
    draw.line((left, floor, left + panel, floor), fill="black")
    for tick in range(0, int(top) + 1, 250):
        y = floor - (floor - ceiling) * tick / top
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((left - 40, y - 6), f"{tick}", fill="black")
    step = panel / max(1, len(names))
    for index, name in enumerate(names):
        r = results[name]
        x0, x1 = left + index * step + 6, left + (index + 1) * step - 6
        idle_y = floor - (floor - ceiling) * mib(r["idle_bytes"]) / top
        peak_y = floor - (floor - ceiling) * mib(r["peak_bytes"]) / top
        draw.rectangle((x0, idle_y, x1, floor), fill=(190, 190, 190))
        draw.rectangle((x0, peak_y, x1, idle_y), fill=(200, 70, 60))
        reference = base.get(group(r))
        label = f"{r['peak_bytes'] / reference['peak_bytes']:.2f}x" if reference else ""
        draw.text((x0, peak_y - 26), f"{mib(r['peak_bytes']):.0f}", fill="black")
        draw.text((x0, peak_y - 13), label, fill="black")
        draw.text((x0, floor + 6), f"{r['frames']:,} fr", fill="black")
        draw.text((x0, floor + 19), f"{r['pixels']} px {r['format']}", fill="black")
        draw.text((x0, floor + 32), f"{r['decoder']} {r.get('decode', 'full')}", fill="black")

    longest = max(results.values(), key=lambda r: (r["format"] == "mp4", not r["held"], r["frames"] * r["pixels"] ** 2))
    growth = [sample[:3] for sample in longest["growth"]] or [(0.0, 0, longest["idle_bytes"])]
    left2 = 700
    draw.text((left2, 10), f"{longest['case']} ({longest['frames']:,} frames, {longest['pixels']} px, "
                           f"{longest['format']}) while rendering:", fill="black")
    draw.text((left2, 24), "green = size of the partial output file, black = process RSS", fill="black")
    draw.line((left2, ceiling, left2, floor), fill="black")
    draw.line((left2, floor, left2 + panel, floor), fill="black")
    t_max = max(t for t, _, _ in growth) or 1
    size_max = max(longest["file_bytes"], max(s for _, s, _ in growth)) or 1
    rss_max = max(max(rss for _, _, rss in growth), longest["peak_bytes"]) or 1
    size_points = [(left2 + panel * t / t_max, floor - (floor - ceiling) * s / size_max) for t, s, _ in growth]
    rss_points = [(left2 + panel * t / t_max, floor - (floor - ceiling) * rss / rss_max) for t, _, rss in growth]
    if len(size_points) > 1:
        draw.line(size_points, fill=(30, 150, 60), width=2)
        draw.line(rss_points, fill="black", width=2)
    draw.text((left2, floor + 8), f"time 0 .. {t_max:.0f} s", fill="black")
    draw.text((left2, floor + 21), f"file 0 .. {size_max / 1024:,.0f} KiB (final {longest['file_bytes'] / 1024:,.0f} KiB)",
              fill=(30, 150, 60))
    draw.text((left2, floor + 34), f"RSS 0 .. {mib(rss_max):.0f} MiB (idle {mib(longest['idle_bytes']):.0f}, "
                                   f"peak {mib(longest['peak_bytes']):.0f})", fill="black")
    image.save(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", default=DEFAULT_TAESD, help="folder with taef2_decoder.pth")
    parser.add_argument("--quick", action="store_true", help="a smoke run: " + ", ".join(QUICK))
    parser.add_argument("--cases", nargs="*", choices=sorted(CASES), help="cases to run (default: %(default)s)",
                        default=list(DEFAULT))
    parser.add_argument("--plot", default=None, help="write the PNG plot here")
    parser.add_argument("--json", default=None, help="append the results here as JSON lines")
    parser.add_argument("--out-dir", default=None, help="where the files are written (default: a temp dir)")
    parser.add_argument("--decode", choices=("full", "incremental"), default="incremental",
                        help="the Render node's decode for the taef2 cases (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cases run at once, each in its own process (peaks are per process; times get noisier)")
    parser.add_argument("--report", nargs="*", default=None,
                        help="print the table (and --plot) of --json files, run nothing (runs of older versions "
                             "without a chunk figure used chunks of 16)")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.taesd = os.path.abspath(args.taesd)

    if args.case:
        emit_result(run_case(args.case, args.taesd, args.out_dir, args.decode))
        return 0

    names = list(QUICK) if args.quick else args.cases
    results = {}
    if args.report:
        for report in args.report:
            with open(report) as f:
                for line in f:
                    r = json.loads(line)
                    results[f"{r['case']} c{r.get('chunk', 16)} {r.get('decode', 'full')}"] = r
        names = []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {name: pool.submit(spawn, name, args) for name in names}
        for name, future in futures.items():
            results[name] = r = future.result()
            print(f"{name}: peak {mib(r['peak_bytes']):.0f} MiB, idle {mib(r['idle_bytes']):.0f} MiB, "
                  f"{r['seconds']:.0f} s, {growth_summary(r)}", flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(r) + "\n")
    print()
    print("\n".join(table(results)))
    print()
    print("The output file while rendering (time since the render started, frames decoded: size):")
    for r in results.values():
        print(f"- {r['case']}: {growth_steps(r)}")
        if r.get("incremental"):
            print(f"  incremental decoding: {r['incremental']}")
    print()
    print("\n".join(verdicts(results)))
    if args.plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
