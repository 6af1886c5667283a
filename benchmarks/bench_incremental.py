"""Incremental against full decoding: speed and error with the real taef2 decoder (ARCHITECTURE.md "Targets", render speed).

Run:  .venv/bin/python benchmarks/bench_incremental.py [--taesd ../shared/data/taesd] [--sizes 256 512 1024]
      [--frames 1000] [--windows 4] [--window 64] [--threads N] [--plot incremental.png] [--quick]

For each pixel size a stroke painting of a photo (the stand-in plan of painter/tools/standin.py, as
benchmarks/bench_painter.py builds it, painted to ``--frames`` frames) is decoded two ways in the
same process: incrementally, every frame of the painting in one run as Render and Decode Frames
run it (painter/render/staged.py, default options), and in full (one frame per call: the reference
each frame is held to) on ``--windows`` runs of ``--window`` consecutive frames spread evenly over
the painting, the last run ending on the painting's last frame. Each run is decoded in full as
soon as the incremental decode has handed its frames over, so both ways meet the machine's load
through the whole measurement. A full decode costs the same whatever the frame shows (the per-run
figures are printed), so the full time of the painting is the runs' mean per frame times its
frames, and the speed is that over the incremental decode's time (the issue's "time ratios may be
measured on a few hundred consecutive frames sampled across the painting, so the 1024² baseline
stays affordable"). ``--threads`` sets torch's CPU threads for both ways
(on a loaded machine two threads make every small operation wait for a time slice, which hits
the many small crop decodes far harder than full decodes). Every frame of the runs is compared with its full
decode (PSNR, whole frame); the last frame must be bit-identical; the rest of the painting is sampled
only by the incremental decoder's own checks (a full decode per span of 32 frames, and one before
each frame too large for crops), whose count and worst PSNR are printed. Prints a table and draws a PNG
(per-frame PSNR over the painting, and the speed ratios).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from latent_painter.painter.tools.demo import PHOTOS, load_photos
from latent_painter.painter.render.spans import IncrementalOptions, IncrementalStats, psnr
from latent_painter.painter.render.staged import staged_strategy
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.tools.standin import latent_format_from, photo_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.tools.taesd import TinyAutoencoder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAESD = os.environ.get("LATENT_PAINTER_TAESD", str(ROOT.parent / "shared" / "data" / "taesd"))
TARGETS = {512: 3.0, 1024: 5.0}


def stroke_painting(vae: TinyAutoencoder, size: int, frames: int) -> torch.Tensor:
    """``[frames,32,size/8,size/8]``: the stand-in plan of a photo painted with stroke24."""
    latents = vae.encode(load_photos(PHOTOS, size))
    plan = photo_plan(latents[0], latents, steps=30, latent_format=latent_format_from(latents))
    return paint(plan, (Strokes(),), PaintOptions(frames=frames)).frames


def windows(total: int, count: int, length: int) -> list[tuple[int, int]]:
    """``count`` runs of ``length`` frames spread evenly over ``total``, the last ending at the end."""
    length = min(length, total)
    if count * length >= total:
        return [(0, total)]
    starts = [round(k * (total - length) / (count - 1)) for k in range(count)] if count > 1 else [total - length]
    return [(start, start + length) for start in starts]


def full_run(vae: TinyAutoencoder, latents: torch.Tensor) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    images = torch.cat([vae.decode(latents[i : i + 1]) for i in range(latents.shape[0])])
    return images, time.perf_counter() - start


def measure(vae: TinyAutoencoder, size: int, frames: int, count: int, length: int, options: IncrementalOptions) -> dict:
    """One incremental decode of the whole painting, as a render runs it; each sampled run of
    frames is decoded in full as soon as the incremental decode has handed it over (so the two ways
    share the machine's load through the run), timed, and compared frame by frame."""
    painting = stroke_painting(vae, size, frames)
    total = painting.shape[0]
    run = staged_strategy().start(vae.decoder_view(), options, tuple(painting.shape[1:]))
    runs = windows(total, count, length)
    row = {"size": size, "frames": total, "measured": 0, "full": 0.0, "incremental": 0.0, "psnr": [],
           "positions": [], "stats": IncrementalStats(), "full_per_run": [], "runs": runs}
    sampled = {index for start, stop in runs for index in range(start, stop)}
    kept: dict[int, torch.Tensor] = {}
    waiting = list(runs)
    stream = run([painting], row["stats"])
    handed = 0
    while True:
        start = time.perf_counter()
        chunk = next(stream, None)
        row["incremental"] += time.perf_counter() - start
        if chunk is None:
            break
        kept.update((handed + i, chunk[i].clone()) for i in range(chunk.shape[0]) if handed + i in sampled)
        handed += chunk.shape[0]
        del chunk
        while waiting and waiting[0][1] <= handed:
            first, stop = waiting.pop(0)
            reference, seconds = full_run(vae, painting[first:stop].contiguous())
            row["full"] += seconds
            row["full_per_run"].append(seconds / (stop - first))
            row["measured"] += stop - first
            row["psnr"] += [psnr(kept[i], reference[i - first]) for i in range(first, stop)]
            row["positions"] += list(range(first, stop))
            if stop == total:
                row["last_identical"] = torch.equal(kept[total - 1], reference[-1])
            for i in range(first, stop):
                del kept[i]
            print(f"  {size} px: frames {first}-{stop - 1} decoded in full ({seconds / (stop - first):.2f} s/frame); "
                  f"incremental {handed} frames in {row['incremental']:.0f} s", file=sys.stderr, flush=True)
    # Full decodes cost the same whatever the frame shows (measured per run, printed), so the
    # sampled runs' mean stands for every frame's.
    row["full_total"] = row["full"] / row["measured"] * total
    return row


def report(rows: list[dict], options: IncrementalOptions) -> None:
    print(f"\n== incremental vs full decodes, taef2, bound {options.min_psnr:g} dB (threshold {options.threshold}, "
          f"halo {options.halo}, context {options.context}, check every {options.check_every}) ==")
    print(f"{'size':>6} {'frames':>7} {'compared':>9} {'full s/f':>9} {'incr s/f':>9} {'speed':>7} "
          f"{'min dB':>7} {'mean dB':>8} {'exact':>6} {'last':>9}  decodes")
    for row in rows:
        scores = row["psnr"]
        finite = [s for s in scores if math.isfinite(s)]
        exact = len(scores) - len(finite)
        ratio = row["full_total"] / row["incremental"]
        target = TARGETS.get(row["size"])
        verdict = "" if target is None else (f"  target >= {target:g}x met" if ratio >= target else f"  target >= {target:g}x MISSED")
        stats = row["stats"]
        print(
            f"{row['size']:>5}² {row['frames']:>7} {row['measured']:>9} {row['full'] / row['measured']:>9.3f} "
            f"{row['incremental'] / row['frames']:>9.3f} {ratio:>6.2f}x "
            f"{min(scores):>7.1f} "
            f"{statistics.fmean(finite) if finite else math.inf:>8.1f} {exact:>6} "
            f"{'identical' if row.get('last_identical') else 'DIFFERS':>9}  "
            f"{stats.full_decodes} full, {stats.crop_decodes} crop ({stats.crop_area / max(stats.frames, 1):.0%} avg), "
            f"{stats.failed_checks}/{stats.checks} checks missed (worst check {stats.min_check_psnr:.1f} dB){verdict}"
        )
        print(f"       frames decoded in full: {', '.join(f'{a}-{b - 1}' for a, b in row['runs'])}; "
              f"full s/frame per run: {', '.join(f'{t:.2f}' for t in row['full_per_run'])}")
        if min(scores) < options.min_psnr:
            print(f"       !! a frame is below the {options.min_psnr:g} dB bound")
    print("(incremental: one decode of every frame of the painting, timed; full: the listed runs of frames decoded one "
          "per call right after the incremental decode handed them over, timed; speed: full s/frame x frames / "
          "incremental time; min/mean dB: PSNR of each compared frame against its full decode, mean over frames that "
          "differ; exact: compared frames bit-identical to their full decode; worst check: the incremental decoder's "
          "own checks, one per span of frames, over the whole painting; a missed one had its span decoded again in "
          "full before it was handed over)")


def plot(rows: list[dict], path: str, options: IncrementalOptions) -> None:
    """Per-frame PSNR over the painting for every size, and the speed ratios, as a PNG."""
    from PIL import Image, ImageDraw

    width, height, left, top, bottom = 900, 420, 60, 30, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = width - left - 220, height - top - bottom
    low, high = 40.0, 80.0

    def y_of(db):
        return top + plot_h * (1 - (min(max(db, low), high) - low) / (high - low))

    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for db in range(int(low), int(high) + 1, 10):
        draw.line([left - 4, y_of(db), left, y_of(db)], fill="black")
        draw.text((left - 40, y_of(db) - 6), f"{db} dB", fill="black")
    draw.line([left, y_of(options.min_psnr), left + plot_w, y_of(options.min_psnr)], fill=(200, 0, 0))
    draw.text((left + 4, y_of(options.min_psnr) + 2), f"bound {options.min_psnr:g} dB", fill=(200, 0, 0))
    colours = [(31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
    for row, colour in zip(rows, colours):
        total = max(row["frames"] - 1, 1)
        previous = None
        for position, score in zip(row["positions"], row["psnr"]):
            point = (left + plot_w * position / total, y_of(score if math.isfinite(score) else high))
            if previous is not None and position == previous[0] + 1:
                draw.line([previous[1], point], fill=colour)
            previous = (position, point)
    draw.text((left, height - bottom + 10), "frame of the painting (runs of measured frames); top = identical", fill="black")
    x = left + plot_w + 20
    draw.text((x, top), "speed vs full decodes", fill="black")
    for index, (row, colour) in enumerate(zip(rows, colours)):
        ratio = row["full_total"] / row["incremental"]
        y = top + 30 + index * 40
        draw.rectangle([x, y, x + min(ratio, 10) * 16, y + 20], fill=colour)
        draw.text((x + 4, y + 22), f"{row['size']} px: {ratio:.2f}x, min {min(row['psnr']):.1f} dB", fill="black")
    image.save(path)
    print(f"plot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", default=DEFAULT_TAESD, help="folder with taef2_encoder.pth and taef2_decoder.pth")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="pixel sizes (multiples of 8)")
    parser.add_argument("--frames", type=int, default=1000, help="frames of the painting")
    parser.add_argument("--windows", type=int, default=4, help="runs of consecutive frames measured per size")
    parser.add_argument("--window", type=int, default=64, help="frames per run (all frames when windows*window >= frames)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads for both ways (0: torch's default)")
    parser.add_argument("--plot", default="incremental.png", help="PNG to draw (not committed)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 256 px, 200 frames, 2 runs of 24")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.frames, args.windows, args.window = [256], 200, 2, 24
    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    vae = TinyAutoencoder.from_folder(args.taesd)
    options = IncrementalOptions()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, decoder {vae.name}, load {os.getloadavg()[0]:.1f}")
    rows = [measure(vae, size, args.frames, args.windows, args.window, options) for size in args.sizes]
    report(rows, options)
    plot(rows, args.plot, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
