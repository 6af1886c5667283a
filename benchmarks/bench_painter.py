"""Painter speed against decoding, and pacing against the x0-preview baseline (ARCHITECTURE.md "Targets").

Run:  .venv/bin/python benchmarks/bench_painter.py [--taesd FOLDER] [--quick]

Prints, in one run on this machine:
1. painter frames per second at 64x64x4, 64x64x32 and 128x128x16 latents, and the painter's
   cost per frame as a ratio to decoding one frame with the real TAESD decoder at the same
   spatial size, measured in the same process (target <= 1%). The decoder is the 32-channel
   taef2 one for every row: decoding cost is set by the spatial size (the only layer that sees
   the channel count is the first 3x3 convolution, a fraction of a percent of the work).
2. pacing (max gap between the cumulative share of frame-to-frame change and the share of
   frames elapsed; 0 is even), measured on frames decoded by the real TAESD decoder, for the
   painter and for the x0-preview baseline on the same plan of a real photo (target <= 0.10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from latent_painter.painter.tools.demo import PHOTOS, load_photos
from latent_painter.painter.render.decoding import decode_frames
from latent_painter.painter.tools.metrics import pacing, x0_preview_latents
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.tools.standin import latent_format_from, photo_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.tools.taesd import TinyAutoencoder
from latent_painter.painter.engine.pacing import calibration_probes
from latent_painter.painter.tools.weights import find_or_exit



def synthetic_plan(channels: int, size: int, steps: int, seed: int = 0):
    """Predicted originals that sharpen like a denoising run's: the final latent low-passed less
    and less (the spectrum shape of the stand-in, without needing photo latents of every size)."""
    generator = torch.Generator().manual_seed(seed)
    final = torch.randn(channels, size, size, generator=generator)
    spectrum = torch.fft.rfft2(final)
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    radius = (fy**2 + fx**2).sqrt()
    originals = []
    for step in range(1, steps + 1):
        cutoff = 0.5 * (step / steps) ** 2
        originals.append(torch.fft.irfft2(spectrum * torch.exp(-((radius / max(cutoff, 1e-3)) ** 2)), s=(size, size)))
    originals[-1] = final
    return make_plan(torch.stack(originals), final)


def timed(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def speed(decoder: TinyAutoencoder, steps: int, repeats: int) -> None:
    print("== painter speed vs one TAESD decode (same process) ==")
    print(f"{'latent':>12} {'frames':>7} {'painter ms':>11} {'frames/s':>9} {'ms/frame':>9} {'decode ms':>10} {'ratio':>8}")
    for channels, size in ((4, 64), (32, 64), (16, 128)):
        plan = synthetic_plan(channels, size, steps)
        frames = len(paint(plan, (Strokes(),)))
        seconds = timed(lambda: paint(plan, (Strokes(),)), repeats)
        probe = torch.randn(1, decoder.latent_channels, size, size)
        decode_seconds = timed(lambda: decoder.decode(probe), repeats)
        per_frame = seconds / frames
        print(
            f"{size}x{size}x{channels:<4} {frames:>7} {seconds * 1e3:>11.0f} {frames / seconds:>9.0f} "
            f"{per_frame * 1e3:>9.3f} {decode_seconds * 1e3:>10.0f} {per_frame / decode_seconds:>8.2%}"
        )


def photo_latents(decoder: TinyAutoencoder, size: int):
    return decoder.encode(load_photos(PHOTOS, size))


def pacing_run(decoder: TinyAutoencoder, size: int, steps: int, frames: int) -> None:
    latents = photo_latents(decoder, size)
    # the latent->RGB estimate of visible change, fitted against the decoder on the photos
    latent_format = latent_format_from(latents, decoder.decode(latents))
    decode = lambda x: decode_frames(decoder.decode, x, chunk_size=16)  # noqa: E731
    for label, sigma_max in (
        ("stand-in plan, sigma_max 14.6 (change spread gently over the steps)", 14.6),
        ("front-loaded plan, sigma_max 2 (the first prediction already shows the layout, as a real model's)", 2.0),
    ):
        print(f"\n== pacing on decoded frames: {size}x{size} px photo (astronaut), {steps}-step {label} ==")
        plan = photo_plan(latents[0], latents, steps=steps, sigma_max=sigma_max, latent_format=latent_format)
        baseline = pacing(decode(x0_preview_latents(plan)))
        rows = [("x0-preview baseline (one frame per predicted original)", len(plan.targets), baseline)]
        for name, options, calibrate in (
            ("stroke24, frames follow strokes (the author's timing)", PaintOptions(pacing="strokes", frames=frames), None),
            ("stroke24, equal change, linear estimate only", PaintOptions(pacing="change", frames=frames), None),
            ("stroke24, equal change, calibrated by the decoder", PaintOptions(pacing="change", frames=frames),
             decoder.decode),
        ):
            painting = paint(plan, (Strokes(),), options, decode=calibrate)
            rows.append((name, len(painting), pacing(decode(painting.frames))))
        for name, count, value in rows:
            verdict = "" if count == len(plan.targets) else ("  target <= 0.10 met" if value <= 0.10 else "  target <= 0.10 missed")
            print(f"{name:<58} frames {count:>5}  pacing {value:.3f}  vs baseline {value / baseline:.2f}x{verdict}")
    probes = calibration_probes(frames)
    print(f"(calibration decodes {probes} probe frames: {probes / frames:.0%} more decoding than the {frames} frames)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", help="folder with taef2_encoder.pth and taef2_decoder.pth (default: the lookup of painter/tools/weights.py)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and frames (a smoke run)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    decoder = find_or_exit(args.taesd, families=("taef2",), program="bench_painter").load()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, decoder {decoder.name}")
    speed(decoder, steps=10 if args.quick else 30, repeats=1 if args.quick else 3)
    pacing_run(decoder, size=128 if args.quick else 256, steps=10 if args.quick else 30, frames=60 if args.quick else 240)
    return 0


if __name__ == "__main__":
    sys.exit(main())
