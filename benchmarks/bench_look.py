"""The look of a painting: decoder grid in the early frames, pacing, exactness, and contact sheets
beside the author's video (ARCHITECTURE.md "Targets", look).

Run:  .venv/bin/python benchmarks/bench_look.py [--taesd ../shared/data/taesd] [--quick]

Setup, all in one process on this machine. scikit-image's bundled photos at --size px (256) are
encoded with the real taef2 encoder (32 channels, the FLUX.2 latent space). The 16- and
4-channel latent spaces are stand-ins built from it: the top principal directions of the photo
latents (uncentred, so the zero latent stays the zero latent), each scaled to unit RMS, decoded
by mapping back to 32 channels and running the real taef2 decoder. Each plan is a real run's
x0 trajectory as the look targets were measured on (a run decoded and re-encoded into the
latent space): the stand-in sampler (``standin.photo_plan``) run in pixel space on the photo,
every predicted original encoded with the space's encoder.

Per latent family, every default configuration of the nodes: Paint and Transition (astronaut ->
chelsea, the default route) with a VAE connected (the default canvas is then the encoded flat
colour of the final image, and the VAE calibrates change pacing), with and without the format's
RGB preview factors. The nodes refuse the default change pacing without a VAE: no linear
estimate stands in for the decoder. ``--without-vae`` adds the engine's rows without a decoder
(zero canvas, pacing by the linear estimate) to show why; they have no target. Measured on frames decoded by the real
decoder (the transition over its active frames):

- grid: 90th percentile of the early frames' (first 40%, frame 0 excluded) decoder-grid energy
  over the last frame's (``metrics.early_grid_ratio``; target <= 1.5 with a VAE);
- pacing (``metrics.pacing``; target <= 0.10 for every default configuration);
- exact: the last frame is the plan's final latent bit for bit.

For each family's Paint with a VAE, a contact sheet PNG: our frames at equal shares of the
animation above the author's ``stroke24`` astronaut video at the same shares (read with PyAV,
which the benchmark needs and the pack does not; the video is never copied into the pack).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from latent_painter.painter.engine.canvas import default_canvas, make_canvas
from latent_painter.painter.engine.picture import picture_plan
from latent_painter.painter.tools.demo import load_photos
from latent_painter.painter.tools.metrics import active_range, early_grid_ratio_from_energy, grid_energy, is_exact, pacing
from latent_painter.painter.render.decoding import decode_frames
from latent_painter.painter.render.writers import to_uint8
from latent_painter.painter.engine.paint import PaintOptions, paint
from latent_painter.painter.engine.plan import Plan, make_plan
from latent_painter.painter.tools.standin import latent_format_from, reencoded_photo_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.tools.taesd import TinyAutoencoder
from latent_painter.painter.engine.transition import Route, transition

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TAESD = os.environ.get("LATENT_PAINTER_TAESD", str(ROOT.parent / "shared" / "data" / "taesd"))
DEFAULT_VIDEO = ROOT.parent / "shared" / "reference" / "paper-demos" / "Astronaut_strok24_56fps_20s.mp4"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
GRID_TARGET = 1.5
PACING_TARGET = 0.10
SHEET_COLUMNS = 8
# Frames of a lossy video that differ by less than this are a hold (metrics.active_range).
VIDEO_HOLD_TOLERANCE = 0.5 / 255


@dataclass(frozen=True)
class LatentSpace:
    """A latent family: its channel count and its real (or stand-in) encoder and decoder."""

    name: str
    channels: int
    encode: object  # IMAGE [N,H,W,3] -> latents [N,C,h,w]
    decode: object  # latents [N,C,h,w] -> IMAGE [N,H,W,3]
    scale: int = 8  # pixels per latent pixel


def principal_space(autoencoder: TinyAutoencoder, photo_latents: torch.Tensor, channels: int) -> LatentSpace:
    """A ``channels``-channel latent space inside taef2's: the top uncentred principal directions of
    the photo latents, each scaled to unit RMS. Linear both ways, so zero maps to zero."""
    samples = photo_latents.permute(0, 2, 3, 1).reshape(-1, photo_latents.shape[1])
    _, singular, right = torch.linalg.svd(samples, full_matrices=False)
    basis = right[:channels].T  # [32, k]
    rms = singular[:channels] / math.sqrt(samples.shape[0])
    to_space = basis / rms  # x @ to_space = z
    from_space = (basis * rms).T  # z @ from_space = x

    def encode(images: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,ck->nkhw", autoencoder.encode(images), to_space)

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return autoencoder.decode(torch.einsum("nkhw,kc->nchw", latents, from_space).contiguous())

    return LatentSpace(f"taef2 top-{channels} (stand-in)", channels, encode, decode)


def latent_spaces(autoencoder: TinyAutoencoder, photos: torch.Tensor, families: tuple[int, ...]) -> list[LatentSpace]:
    native = autoencoder.encode(photos)
    spaces = []
    for channels in families:
        if channels == autoencoder.latent_channels:
            spaces.append(LatentSpace(autoencoder.name, channels, autoencoder.encode, autoencoder.decode))
        else:
            spaces.append(principal_space(autoencoder, native, channels))
    return spaces


def read_reference(path: Path, shares: torch.Tensor, size: int) -> torch.Tensor:
    """Frames of the author's video at ``shares`` of its active part (holds trimmed), ``[K,size,size,3]``."""
    import av

    with av.open(str(path)) as container:
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    video = torch.stack(frames)
    start, stop = active_range(video, tol=VIDEO_HOLD_TOLERANCE)
    picks = (start + shares * (stop - 1 - start)).round().long()
    chosen = video[picks].permute(0, 3, 1, 2).float() / 255
    return F.interpolate(chosen, size=(size, size), mode="area").permute(0, 2, 3, 1)


def write_sheet(path: Path, rows: list[tuple[str, torch.Tensor]]) -> None:
    """A PNG of labelled rows of frames (each ``[K,H,W,3]`` in 0..1)."""
    from PIL import Image, ImageDraw

    label_height = 14
    strips = []
    for label, frames in rows:
        strip = torch.cat(list(frames.clamp(0, 1)), dim=1)
        picture = Image.fromarray(to_uint8(strip).numpy())
        labelled = Image.new("RGB", (picture.width, picture.height + label_height), "white")
        labelled.paste(picture, (0, label_height))
        ImageDraw.Draw(labelled).text((2, 1), label, fill="black")
        strips.append(labelled)
    sheet = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), "white")
    top = 0
    for strip in strips:
        sheet.paste(strip, (0, top))
        top += strip.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


@dataclass
class Result:
    label: str
    frames: int
    grid: float
    pacing: float
    exact: bool


def measure(label: str, painting, final: torch.Tensor, decode, chunk: int = 16) -> tuple[Result, torch.Tensor]:
    images = decode_frames(decode, painting.frames, chunk_size=chunk)
    start, stop = active_range(images)
    active = images[start:stop]
    energy = grid_energy(active)
    result = Result(label, len(painting), early_grid_ratio_from_energy(energy), pacing(active),
                    is_exact(painting.frames, final))
    return result, images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", default=DEFAULT_TAESD, help="folder with taef2_encoder.pth and taef2_decoder.pth")
    parser.add_argument("--video", default=str(DEFAULT_VIDEO), help="the author's stroke24 astronaut video")
    parser.add_argument("--quick", action="store_true", help="128 px, 12 steps, 60 frames (a smoke run)")
    parser.add_argument("--size", type=int, default=None, help="photo side in px (default 256, --quick 128)")
    parser.add_argument("--steps", type=int, default=None, help="stand-in sampler steps (default 30, --quick 12)")
    parser.add_argument("--frames", type=int, default=None, help="frames per painting (default 120, --quick 60)")
    parser.add_argument("--families", default="32,16,4",
                        help="latent channel counts to measure; with --picture, 'pixel' adds pixel space")
    parser.add_argument("--paint-only", action="store_true",
                        help="only Paint with a VAE (the must-show figures), no transitions or no-VAE runs")
    parser.add_argument("--formats", default="rgb,none",
                        help="latent formats to measure: rgb (with preview factors), none (without)")
    parser.add_argument("--without-vae", action="store_true",
                        help="also measure the engine without a decoder (no node default; for comparison)")
    parser.add_argument("--sheets", default="/tmp/latent_painter_look", help="folder for the contact sheet PNGs")
    parser.add_argument("--picture", action="store_true",
                        help="measure Plan From Image instead (engine/picture.py: the photo's own prior, no other "
                             "photos, ending on the encoded photo), on every family and in pixel space, Paint with a "
                             "VAE on the default canvas and on white paper (the template)")
    args = parser.parse_args(argv)
    size = args.size or (128 if args.quick else 256)
    steps = args.steps or (12 if args.quick else 30)
    frames = args.frames or (60 if args.quick else 120)
    families = tuple(int(c) for c in args.families.split(",") if c != "pixel")
    torch.set_grad_enabled(False)
    started = time.perf_counter()
    autoencoder = TinyAutoencoder.from_folder(args.taesd)
    photos = load_photos(PHOTOS, size)
    shares = torch.linspace(0, 1, SHEET_COLUMNS)
    reference = read_reference(Path(args.video), shares, size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, decoder {autoencoder.name}, photos "
          f"{size}x{size} px, {steps}-step re-encoded stand-in plans, {frames} frames, painter defaults")
    print(f"{'family':<26} {'configuration':<40} {'frames':>6} {'grid':>6} {'<=1.5':>5} {'pacing':>7} {'<=0.10':>6} "
          f"{'exact':>5}")
    if args.picture:
        spaces = latent_spaces(autoencoder, photos, families) + ([pixel_space()] if "pixel" in args.families else [])
        for space in spaces:
            measure_picture(space, photos[0], steps, frames, Path(args.sheets))
        print(f"({time.perf_counter() - started:.0f}s)")
        return 0
    for space in latent_spaces(autoencoder, photos, families):
        latents = space.encode(photos)
        with_rgb = latent_format_from(latents, space.decode(latents), name=space.name)
        without_rgb = latent_format_from(latents, name=space.name)
        formats = {"rgb": ("RGB factors", with_rgb), "none": ("no RGB factors", without_rgb)}
        for fmt_label, fmt in (formats[name] for name in args.formats.split(",")):
            plans = [reencoded_photo_plan(photos, i, space.encode, steps, fmt) for i in range(2)]
            for vae in (True, False) if args.without_vae else (True,):
                options = PaintOptions(frames=frames)
                canvas = default_canvas(plans[0].final, space.encode, space.decode) if vae else None
                painting = paint(plans[0], (Strokes(),), options, canvas, decode=space.decode if vae else None)
                label = f"Paint, {'VAE' if vae else 'engine, no decoder'}, {fmt_label}"
                result, images = measure(label, painting, plans[0].final, space.decode)
                report(space, result, grid=vae, target=vae)
                if vae and fmt is with_rgb:
                    picks = (shares * (len(images) - 1)).round().long()
                    sheet = Path(args.sheets) / f"look_{space.channels}ch.png"
                    write_sheet(sheet, [(f"ours: {space.name}, {label}", images[picks]),
                                        ("author: Astronaut stroke24", reference)])
                    print(f"    contact sheet: {sheet}")
                if args.paint_only:
                    continue
                leg = transition(plans, (Strokes(),), Route(), options, decode=space.decode if vae else None)
                label = f"Transition, {'VAE' if vae else 'engine, no decoder'}, {fmt_label}"
                result, _ = measure(label, leg, plans[1].final, space.decode)
                report(space, result, grid=False, target=vae)
    print(f"({time.perf_counter() - started:.0f}s)")
    return 0


def pixel_space() -> LatentSpace:
    """ComfyUI's 'pixel_space' VAE: the latent is the image on -1..1, 3 channels, no decoder texture."""
    return LatentSpace("pixel space", 3, lambda images: images.permute(0, 3, 1, 2) * 2 - 1,
                       lambda latents: ((latents + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1), scale=1)


def measure_picture(space: LatentSpace, photo: torch.Tensor, steps: int, frames: int, sheets: Path) -> None:
    """Plan From Image on one photo (the node's defaults but ``steps``), painted with a VAE on the
    default canvas and on white paper; the last frame must be the encoded photo, bit for bit."""
    plan = picture_plan(photo, space.encode, steps=steps)
    assert torch.equal(plan.final, space.encode(photo[None])[0])
    for kind in ("default", "white"):
        if kind == "default":
            canvas = default_canvas(plan.final, space.encode, space.decode, scale=space.scale)
        else:
            canvas = make_canvas("white", plan.final, space.encode, space.decode, scale=space.scale)
        painting = paint(plan, (Strokes(),), PaintOptions(frames=frames), canvas, decode=space.decode)
        label = f"Plan From Image, Paint, {kind} canvas"
        result, images = measure(label, painting, plan.final, space.decode)
        report(space, result, grid=True, target=True)
        picks = torch.tensor([0, (len(images) - 1) // 2, len(images) - 1])
        sheet = sheets / f"picture_{space.channels}ch_{kind}.png"
        write_sheet(sheet, [(f"{space.name}: {label}: first, middle, last", images[picks])])
        print(f"    first/middle/last: {sheet}")


def report(space: LatentSpace, result: Result, grid: bool, target: bool) -> None:
    """One row; rows without a target (the engine without a decoder) print the figures alone."""
    grid_text = f"{result.grid:>6.2f} {('pass' if result.grid <= GRID_TARGET else 'FAIL') if grid else '':>5}"
    pacing_mark = ('pass' if result.pacing <= PACING_TARGET else 'FAIL') if target else '-'
    print(f"{space.name:<26} {result.label:<40} {result.frames:>6} {grid_text} {result.pacing:>7.3f} "
          f"{pacing_mark:>6} {'yes' if result.exact else 'NO':>5}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
