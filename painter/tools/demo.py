"""Demo: paint a real photo into an animation file, on the CPU, with no model download.

    latent-painter-demo --out latent_painter_demo.webp

The photo (from scikit-image's bundled data) is encoded with a real TAESD encoder, found by
:mod:`painter.weights` (``--taesd``, ComfyUI's ``models/vae_approx``, ``../shared/data/taesd``, the
user cache, else the FLUX.2 taef2 pair is downloaded once); the painting happens in that latent
space. No diffusion model is at hand here, so the plan is the one the Plan From Image node makes
(:func:`engine.picture.picture_plan`): the photo's exact inversion under a Gaussian prior fitted to
it, sampled back through a real sampler loop (Euler steps over a Karras schedule) in pixel space,
each predicted original encoded like a real run's previews would be, ending exactly on the encoded
photo. Inside ComfyUI the plan comes from the real model or from Plan From Image. The painting is
decoded with the real TAESD decoder and written as an animated WEBP (or MP4 when PyAV is
installed and the name ends in .mp4).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..engine.actions import REVEALS, Action
from ..engine.canvas import CANVAS_KINDS, default_canvas, make_canvas
from ..engine.paint import PaintOptions, paint
from ..engine.strokes import STROKE_PRESETS, Strokes
from ..render.decoding import decode_frames
from ..render.sink import render
from ..render.writers import Encoding, require_encoder, to_uint8
from ..engine.picture import picture_plan
from .standin import latent_format_from
from .taesd import TaesdError
from .weights import find_or_download

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# WEBP's lossy quality / MP4's CRF 17 (see render.writers.Encoding): no visible loss on a painting.
QUALITY = 85


def load_photos(names, size: int) -> torch.Tensor:
    """Centre-square crops of scikit-image's bundled photos, area-downscaled: ``[N,size,size,3]`` in 0..1."""
    from skimage import data

    photos = []
    for name in names:
        image = torch.from_numpy(getattr(data, name)()).float() / 255.0
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        square = image[top : top + side, left : left + side].permute(2, 0, 1)[None]
        photos.append(F.interpolate(square, size=(size, size), mode="area")[0].permute(1, 2, 0))
    return torch.stack(photos).contiguous()


class ProgressBar:
    """A one-line text progress bar on stderr (the demo's stand-in for ComfyUI's)."""

    def __init__(self, label: str):
        self.label, self.start, self.shown = label, time.perf_counter(), -1

    def __call__(self, done: int, total: int) -> None:
        share = done / max(1, total)
        if int(share * 100) == self.shown:
            return
        self.shown = int(share * 100)
        bar = "#" * int(share * 30)
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r{self.label:<10} [{bar:<30}] {share:4.0%} {elapsed:5.1f}s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def write_filmstrip(images: torch.Tensor, path: str, rows: int = 2, columns: int = 3) -> str:
    """A JPEG of frames from the first to the last, in reading order (for a README)."""
    from PIL import Image

    picks = torch.linspace(0, images.shape[0] - 1, rows * columns).round().long()
    grid = images[picks].view(rows, columns, *images.shape[1:])
    strip = torch.cat([torch.cat(list(row), dim=1) for row in grid], dim=0)
    picture = Image.fromarray(to_uint8(strip).numpy())
    picture.save(path, format="JPEG", quality=80)
    return path


def measured(images: torch.Tensor, painting, plan) -> str:
    """Pacing and early grid ratio of the decoded painting (holds excluded), and its exact end."""
    from .metrics import active_range, early_grid_ratio, is_exact, pacing

    start, stop = active_range(images)
    return (f"pacing {pacing(images[start:stop]):.3f} (target <= 0.10), early grid "
            f"{early_grid_ratio(images[start:stop]):.2f}x the final frame's (target <= 1.5), ends on the encoded "
            f"photo bit for bit: {'yes' if is_exact(painting.frames, plan.final) else 'NO'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latent-painter-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="latent_painter_demo.webp", help="output file, .webp or .mp4")
    parser.add_argument("--photo", choices=PHOTOS, default="astronaut", help="which bundled photo to paint")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (multiple of 8)")
    parser.add_argument("--steps", type=int, default=30, help="denoising steps of the stand-in sampler = schedules")
    parser.add_argument("--painter", choices=(*STROKE_PRESETS, *REVEALS), default="stroke24",
                        help="a stroke preset or a reveal action")
    parser.add_argument("--frames", type=int, default=240, help="painted frames (0 = one per stroke)")
    parser.add_argument("--fps", type=float, default=24.0, help="frame rate of the file")
    parser.add_argument("--hold", type=int, default=36, help="frames to hold the finished image")
    parser.add_argument("--canvas", choices=(*(k for k in CANVAS_KINDS if k != "colour"), "default", "zero"),
                        default="white",
                        help="what the painting starts on: white paper (the author's look), black, flat (the final "
                             "image's mean colour), default (what Paint does with a VAE connected: flat), or zero "
                             "(the all-zero latent, Paint without a VAE)")
    parser.add_argument("--white-canvas", action="store_true", help="show unpainted areas as paper white")
    parser.add_argument("--stroke-map", action="store_true", help="show the stroke map beside the painting")
    parser.add_argument("--taesd", help="folder with a TAESD encoder/decoder pair, e.g. taef2_encoder.pth and "
                        "taef2_decoder.pth (default: $LATENT_PAINTER_TAESD, ComfyUI's models/vae_approx, "
                        "../shared/data/taesd, the user cache, else a one-time download)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filmstrip", help="also write a JPEG of six frames from first to last")
    parser.add_argument("--measure", action="store_true",
                        help="also print the painting's pacing and early decoder grid (tools/metrics.py, as the "
                             "benchmarks measure them) and whether it ends exactly on the encoded photo")
    return parser


def demo_plan(vae, args):
    """``(plan, canvas)``: Plan From Image's plan of ``args.photo`` in ``vae``'s latent space and the
    canvas ``args.canvas`` (None for the zero latent). The painting ends exactly on ``plan.final``."""
    others = [name for name in PHOTOS if name != args.photo]
    photos = load_photos([args.photo, *others], args.size)
    latents = vae.encode(photos)
    # the latent format (scale, shift, latent->RGB estimate) is fitted on all bundled photos and their decodes
    latent_format = latent_format_from(latents, vae.decode(latents), name=vae.name)
    plan = picture_plan(photos[0], vae.encode, steps=args.steps, latent_format=latent_format)  # Plan From Image
    if args.canvas == "zero":
        return plan, None
    if args.canvas == "default":
        return plan, default_canvas(plan.final, vae.encode, vae.decode)
    return plan, make_canvas(args.canvas, plan.final, vae.encode, vae.decode)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 64 or args.size % 8:
        raise SystemExit(f"--size: {args.size} must be a multiple of 8, at least 64")
    suffix = Path(args.out).suffix.lower().lstrip(".")
    try:
        encoding = Encoding(suffix, args.fps, QUALITY)
        require_encoder(encoding.format)
    except ValueError as error:  # a name that is no format, or a format whose encoder is missing
        raise SystemExit(f"latent-painter-demo: --out {args.out!r}: {error}") from None
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.set_grad_enabled(False)
    started = time.perf_counter()
    try:
        vae = find_or_download(args.taesd, progress=ProgressBar).load()
    except TaesdError as error:  # missing or damaged weights: one line that says what to do, no traceback
        raise SystemExit(f"latent-painter-demo: {error}") from None
    plan, canvas = demo_plan(vae, args)
    if args.painter in STROKE_PRESETS:
        stages = (Strokes(radii=STROKE_PRESETS[args.painter]),)
    else:
        stages = (Action(args.painter),)
    options = PaintOptions(frames=args.frames, pacing="change", seed=args.seed)
    painting = paint(plan, stages, options, canvas, progress=ProgressBar("painting"), decode=vae.decode)
    images = decode_frames(vae.decoder_view(), painting, chunk_size=16, white_canvas=args.white_canvas,
                           stroke_map=args.stroke_map, progress=ProgressBar("decoding"), mode="auto")
    rendered = render([[images]], args.out, encoding, hold_last=args.hold)
    if args.filmstrip:
        write_filmstrip(images, args.filmstrip)
    if args.measure:
        print(measured(images[..., : images.shape[2] // (2 if args.stroke_map else 1), :], painting, plan))
    seconds = time.perf_counter() - started
    print(f"wrote {args.out}: {rendered.frames} frames of {rendered.width}x{rendered.height} "
          f"at {args.fps:g} fps ({plan.steps} schedules, {len(painting)} painted frames) in {seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
