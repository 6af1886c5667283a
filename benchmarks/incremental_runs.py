"""Incremental against full decoding on a whole painting, shared by bench_incremental.py (the pack's
own TAESD) and bench_host_incremental.py (ComfyUI's VAEs in the real host).

What is measured: the painting is decoded incrementally from its first frame to its last in one run,
as Render and Decode Frames run it (``decoded_chunks`` with the decode mode given), and timed. Runs of
consecutive frames spread over the painting are also decoded in full, one frame per call, each as
soon as the incremental decode has handed those frames over (so both ways meet the machine's load
through the measurement), timed and compared frame by frame (PSNR over the whole frame). A full decode
costs the same whatever the frame shows (the per-run figures are printed), so the painting's full time
is the runs' mean per frame times its frames, and the speed is that over the incremental time.
"""

from __future__ import annotations

import math
import statistics
import sys
import time

import torch

from latent_painter.painter.render.decoding import decoded_chunks
from latent_painter.painter.render.spans import IncrementalOptions, IncrementalStats, psnr


def windows(total: int, count: int, length: int) -> list[tuple[int, int]]:
    """``count`` runs of ``length`` frames spread evenly over ``total``, the last ending at the end."""
    length = min(length, total)
    if count * length >= total:
        return [(0, total)]
    starts = [round(k * (total - length) / (count - 1)) for k in range(count)] if count > 1 else [total - length]
    return [(start, start + length) for start in starts]


def measure(label: str, view, decode, painting: torch.Tensor, count: int, length: int, mode: str = "auto",
            chunk: int = 4) -> dict:
    """One incremental decode of ``painting`` with ``view`` in ``mode``; sampled runs decoded in full with
    ``decode`` and compared. Returns the row :func:`report` and :func:`plot` read."""
    total = painting.shape[0]
    runs = windows(total, count, length)
    stats = IncrementalStats()
    row = {"label": label, "size": int(painting.shape[-1]) * 8, "frames": total, "measured": 0, "full": 0.0,
           "incremental": 0.0, "psnr": [], "positions": [], "stats": stats, "full_per_run": [], "runs": runs}
    sampled = {index for start, stop in runs for index in range(start, stop)}
    kept: dict[int, torch.Tensor] = {}
    waiting = list(runs)
    stream = decoded_chunks(view, painting, chunk, mode=mode, stats=stats)
    handed = 0
    while True:
        start = time.perf_counter()
        images = next(stream, None)
        row["incremental"] += time.perf_counter() - start
        if images is None:
            break
        kept.update((handed + i, images[i].clone()) for i in range(images.shape[0]) if handed + i in sampled)
        handed += images.shape[0]
        del images
        while waiting and waiting[0][1] <= handed:
            first, stop = waiting.pop(0)
            started = time.perf_counter()
            with torch.no_grad():
                reference = torch.cat([decode(painting[i : i + 1]) for i in range(first, stop)])
            seconds = time.perf_counter() - started
            row["full"] += seconds
            row["full_per_run"].append(seconds / (stop - first))
            row["measured"] += stop - first
            row["psnr"] += [psnr(kept[i], reference[i - first]) for i in range(first, stop)]
            row["positions"] += list(range(first, stop))
            if stop == total:
                row["last_identical"] = torch.equal(kept[total - 1], reference[-1])
            for i in range(first, stop):
                del kept[i]
            print(f"  {label}: frames {first}-{stop - 1} decoded in full ({seconds / (stop - first):.2f} s/frame); "
                  f"incremental {handed} frames in {row['incremental']:.0f} s", file=sys.stderr, flush=True)
    row["full_total"] = row["full"] / row["measured"] * total
    row["speed"] = row["full_total"] / row["incremental"]
    finite = [s for s in row["psnr"] if math.isfinite(s)]
    row["min_psnr"] = min(row["psnr"])
    row["mean_psnr"] = statistics.fmean(finite) if finite else math.inf
    return row


def report(rows: list[dict], options: IncrementalOptions, targets: dict | None = None) -> list[str]:
    """Markdown table lines of the rows (printed too)."""
    lines = [f"bound {options.min_psnr:g} dB, a check every {options.check_every} frames",
             "| decoder | size | frames | compared | strategy | full s/frame | incremental s/frame | speed | min PSNR "
             "| mean PSNR | last frame | the decoder's own checks |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for row in rows:
        stats, target = row["stats"], (targets or {}).get((row["label"], row["size"]))
        verdict = "" if target is None else f" (target >= {target:g}x: {'met' if row['speed'] >= target else 'MISSED'})"
        lines.append(
            f"| {row['label']} | {row['size']}² | {row['frames']} | {row['measured']} | {stats.strategy} | "
            f"{row['full'] / row['measured']:.3f} | {row['incremental'] / row['frames']:.3f} | "
            f"{row['speed']:.2f}x{verdict} | {row['min_psnr']:.1f} dB | {row['mean_psnr']:.1f} dB | "
            f"{'identical' if row.get('last_identical') else 'DIFFERS'} | {stats.checks} checks, "
            f"{stats.failed_checks} missed, worst {stats.min_check_psnr:.1f} dB; {stats.full_decodes} full, "
            f"{stats.crop_decodes} incremental decodes{'; full from then on: ' + stats.fallback if stats.fallback else ''} |")
    print("\n".join(lines))
    for row in rows:
        print(f"  {row['label']} {row['size']}²: full s/frame per run {', '.join(f'{t:.2f}' for t in row['full_per_run'])};"
              f" frames compared {', '.join(f'{a}-{b - 1}' for a, b in row['runs'])}")
    return lines


def plot(rows: list[dict], path: str, options: IncrementalOptions, title: str) -> None:
    """Per-frame PSNR over the painting for every row, and the speed ratios, as a PNG."""
    from PIL import Image, ImageDraw

    width, height, left, top, bottom = 960, 440, 60, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    plot_w, plot_h = width - left - 280, height - top - bottom
    low, high = 30.0, 80.0

    def y_of(db):
        return top + plot_h * (1 - (min(max(db, low), high) - low) / (high - low))

    draw.text((left, 10), title, fill="black")
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    for db in range(int(low), int(high) + 1, 10):
        draw.line([left - 4, y_of(db), left, y_of(db)], fill="black")
        draw.text((left - 40, y_of(db) - 6), f"{db} dB", fill="black")
    draw.line([left, y_of(options.min_psnr), left + plot_w, y_of(options.min_psnr)], fill=(200, 0, 0))
    draw.text((left + 4, y_of(options.min_psnr) + 2), f"bound {options.min_psnr:g} dB", fill=(200, 0, 0))
    colours = [(31, 119, 180), (44, 160, 44), (148, 103, 189), (255, 127, 14), (140, 86, 75), (227, 119, 194)]
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
        y = top + 30 + index * 44
        draw.rectangle([x, y, x + min(row["speed"], 10) * 16, y + 20], fill=colour)
        draw.text((x + 4, y + 22), f"{row['label']} {row['size']} px: {row['speed']:.2f}x, min {row['min_psnr']:.1f} dB",
                  fill="black")
    image.save(path)
    print(f"plot: {path}")
