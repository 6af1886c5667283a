"""What a painting's first frame looks like on each canvas, with the real FLUX.2 TAESD (ARCHITECTURE.md "Targets", look).

Run:  .venv/bin/python benchmarks/bench_canvas.py [--taesd ../shared/data/taesd] [--size 256]

Prints, for the zero latent (Paint without a VAE), the default canvas with a VAE (the final
image's mean colour, encoded), and the Canvas node's white and black: the first frame's mean
colour, its texture (mean |difference| between neighbouring pixels, 0 for a flat image) as a
ratio to the zero latent's texture measured in the same run, and whether a stroke24 painting on
it still ends bit for bit on the final latent. The plan is the stand-in run of a real photo
(painter/tools/standin.py) in the taef2 latent space. How the early frames look while the strokes go
down (grid energy, pacing) is the look benchmark's subject, not this one's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from latent_painter.painter.engine.canvas import default_canvas, make_canvas
from latent_painter.painter.tools.demo import PHOTOS, load_photos
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.tools.standin import latent_format_from, photo_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.tools.taesd import TinyAutoencoder

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAESD = os.environ.get("LATENT_PAINTER_TAESD", str(ROOT.parent / "shared" / "data" / "taesd"))


def texture(image: torch.Tensor) -> float:
    """Mean |difference| between neighbouring pixels of an [H,W,3] image."""
    return float((image[1:] - image[:-1]).abs().mean() + (image[:, 1:] - image[:, :-1]).abs().mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", default=DEFAULT_TAESD)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (multiple of 8)")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    vae = TinyAutoencoder.from_folder(args.taesd, "taef2")
    latents = vae.encode(load_photos(list(PHOTOS), args.size))
    plan = photo_plan(latents[0], latents, steps=20,
                      latent_format=latent_format_from(latents, vae.decode(latents), name="taef2"))
    canvases = {
        "zero latent (Paint, no VAE)": torch.zeros_like(plan.final),
        "default with a VAE (mean colour)": default_canvas(plan.final, vae.encode, vae.decode),
        "Canvas white": make_canvas("white", plan.final, vae.encode),
        "Canvas black": make_canvas("black", plan.final, vae.encode),
    }
    first = vae.decode(torch.stack(list(canvases.values())))
    baseline = texture(first[0])
    print(f"taef2, {args.size} px, stand-in astronaut plan (20 steps)")
    print(f"{'canvas':34} {'first-frame mean RGB':24} {'texture':>8} {'vs zero':>8}  ends exactly")
    for (name, canvas), image in zip(canvases.items(), first):
        painting = paint(plan, (Strokes(),), PaintOptions(frames=60, pacing="strokes"), canvas)
        exact = torch.equal(painting.frames[-1], plan.final) and torch.equal(painting.frames[0], canvas)
        mean = ", ".join(f"{v:.3f}" for v in image.mean(dim=(0, 1)).tolist())
        print(f"{name:34} {mean:24} {texture(image):8.4f} {texture(image) / baseline:8.3f}  {exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
