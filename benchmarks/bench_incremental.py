"""Incremental against full decoding: speed and error with the real taef2 decoder (ARCHITECTURE.md "Targets", render speed).

Run:  .venv/bin/python benchmarks/bench_incremental.py [--taesd ../shared/data/taesd] [--sizes 256 512 1024]
      [--frames 1000] [--windows 4] [--window 64] [--threads N] [--plot incremental.png] [--quick]

For each pixel size a stroke painting of a photo (the stand-in plan of painter/tools/standin.py,
painted to ``--frames`` frames with the default ``Strokes()``) is decoded by the pack's own TAESD
as the nodes decode it with ``decode: auto`` (the staged strategy, painter/render/staged.py), and in
full on ``--windows`` runs of ``--window`` frames: benchmarks/incremental_runs.py says how. ``--threads``
sets torch's CPU threads for both ways. Prints a table and draws a PNG (per-frame PSNR over the
painting, and the speed ratios).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from incremental_runs import measure, plot, report  # noqa: E402

from latent_painter.painter.engine.paint import PaintOptions, paint  # noqa: E402
from latent_painter.painter.engine.strokes import Strokes  # noqa: E402
from latent_painter.painter.render.spans import IncrementalOptions  # noqa: E402
from latent_painter.painter.tools.demo import PHOTOS, load_photos  # noqa: E402
from latent_painter.painter.tools.standin import latent_format_from, photo_plan  # noqa: E402
from latent_painter.painter.tools.taesd import TinyAutoencoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAESD = os.environ.get("LATENT_PAINTER_TAESD", str(ROOT.parent / "shared" / "data" / "taesd"))
TARGETS = {("taef2", 512): 3.0, ("taef2", 1024): 5.0}


def stroke_painting(encode, size: int, frames: int) -> torch.Tensor:
    """``[frames,C,size/8,size/8]``: the stand-in plan of a photo, encoded by ``encode``, painted with stroke24."""
    latents = encode(load_photos(PHOTOS, size))
    plan = photo_plan(latents[0], latents, steps=30, latent_format=latent_format_from(latents))
    return paint(plan, (Strokes(),), PaintOptions(frames=frames)).frames


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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, decoder {vae.name}, load {os.getloadavg()[0]:.1f}")
    rows = [measure(vae.name, vae.decoder_view(), vae.decode, stroke_painting(vae.encode, size, args.frames), args.windows,
                    args.window) for size in args.sizes]
    options = IncrementalOptions()
    report(rows, options, TARGETS)
    plot(rows, args.plot, options, f"the pack's {vae.name}, decode: auto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
