"""Renders the small pictures of the node help pages (``web/docs/images/*.jpg``) with the pack's own engine.

A developer tool, not shipped (.comfyignore). As for the workflow thumbnails
(``workflows/make_thumbnails.py``, whose studio this reuses), the plans are the analytic stand-in run
on scikit-image's photos in the taef2 latent space, painted by the same painters, actions, canvases
and transitions the nodes run, and decoded with the real TAESD weights. Needs the demo extras and the
taef2 pair:

    python web/make_doc_pictures.py [TAESD_FOLDER]   # default: the lookup of painter/tools/weights.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "web" / "docs" / "images"
TILE = 112  # pixels per frame in a strip
QUALITY = 80
INK, PAPER, GRID = (40, 40, 40), (255, 255, 255), (225, 225, 225)
sys.path.insert(0, str(ROOT / "workflows"))

from make_thumbnails import Studio, frame_at, painted, strokes  # noqa: E402


def _small(images: torch.Tensor, height: int = TILE) -> torch.Tensor:
    """``[N,H,W,3]`` area-downscaled to ``height`` rows (width in proportion)."""
    n, h, w, _ = images.shape
    size = (height, round(w * height / h))
    return F.interpolate(images.permute(0, 3, 1, 2), size=size, mode="area").permute(0, 2, 3, 1).clamp(0, 1)


def _picture(rows: list[torch.Tensor], labels: list[str] | None = None):
    """Rows of ``[N,h,w,3]`` frames side by side, rows stacked, with an optional label above each row."""
    from PIL import Image, ImageDraw

    from latent_painter.painter.render.writers import to_uint8

    band = 14 if labels else 0
    strips = [torch.cat(list(row), dim=1) for row in rows]
    width = max(s.shape[1] for s in strips)
    canvas = Image.new("RGB", (width, sum(s.shape[0] + band for s in strips)), PAPER)
    draw, top = ImageDraw.Draw(canvas), 0
    for i, strip in enumerate(strips):
        if labels:
            draw.text((3, top + 1), labels[i], fill=INK)
        canvas.paste(Image.fromarray(to_uint8(strip).numpy()), (0, top + band))
        top += strip.shape[0] + band
    return canvas


def _save(image, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    image.save(path, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    print(f"wrote {path.relative_to(ROOT)}: {image.size[0]}x{image.size[1]}, {path.stat().st_size} bytes")


SHARES = (0.05, 0.2, 0.4, 0.65, 0.9)


def strokes_and_maps(studio) -> None:
    """Painter: frames on white paper (top) and the coloured stroke map Decode Frames draws (bottom)."""
    from latent_painter.painter.render.composite import StrokeMaps
    from latent_painter.painter.render.decoding import decode_frames

    painting, _ = painted(studio, "chelsea", (strokes(),), 0.0, canvas="white")
    picks = [frame_at(painting, s) for s in SHARES]
    maps = StrokeMaps.of(painting)
    maps = StrokeMaps(maps.coverage[picks], maps.strokes[picks], maps.channels[picks], maps.num_channels)
    images = decode_frames(studio.decode, painting.frames[picks], white_canvas=True, stroke_map=maps)
    width = images.shape[2] // 2
    frames, mapped = _small(images[:, :, :width]), _small(images[:, :, width:])
    _save(_picture([frames, mapped], ["frames on a white Canvas, 5% to 90% of the painting",
                                      "the stroke map: painted so far (grey), this frame's strokes by channel"]),
          "strokes.jpg")


def actions(studio) -> None:
    """Painter Action: each reveal action at three moments of the same plan."""
    from latent_painter.painter.engine.actions import Action

    rows, labels = [], []
    for kind in ("fade", "glow", "flip", "dissolve"):
        painting, _ = painted(studio, "coffee", (Action(kind=kind),), 0.0, frames=48, canvas="white")
        picks = [frame_at(painting, s) for s in (0.2, 0.45, 0.7)]
        rows.append(_small(studio.decode(painting.frames[picks]), 96))
        labels.append(kind)
    _save(_picture(rows, labels), "actions.jpg")


def canvases(studio) -> None:
    """Canvas: the first frame of one painting on each canvas, beside the zero latent (no Canvas, no VAE)."""
    from latent_painter.painter.engine.canvas import make_canvas, parse_colour

    plan = studio.plan("astronaut")
    starts = {"zero latent": torch.zeros_like(plan.final)}
    for kind, colour in (("white", None), ("black", None), ("flat", None), ("colour", "#F4EFE4")):
        extra = {} if colour is None else {"colour": parse_colour(colour)}
        starts[kind if colour is None else f"colour {colour}"] = make_canvas(kind, plan.final, studio.vae.encode,
                                                                            studio.decode, **extra)
    rows = [_small(studio.decode(latent.reshape(1, *plan.final.shape[-3:])), 96) for latent in starts.values()]
    _save(_picture([torch.cat(rows)], ["  |  ".join(starts)]), "canvases.jpg")


def pacing_plot(studio) -> None:
    """Paint's pacing: the share of visible change reached by each share of the frames, for 'strokes'
    and 'change' (even pacing is the diagonal)."""
    from PIL import Image, ImageDraw

    from latent_painter.painter.engine.canvas import make_canvas
    from latent_painter.painter.engine.paint import PaintOptions, paint

    plan = studio.plan("astronaut")
    start = make_canvas("white", plan.final, studio.vae.encode, studio.decode)
    curves = {}
    for pacing in ("strokes", "change"):  # as Paint runs them with its VAE connected
        painting = paint(plan, (strokes(),), PaintOptions(frames=60, pacing=pacing, cleanup_frames=12), start,
                         decode=studio.decode)
        images = studio.decode(painting.frames)
        change = (images[1:] - images[:-1]).abs().mean(dim=(1, 2, 3))
        curves[pacing] = torch.cat([torch.zeros(1), change.cumsum(0) / change.sum()])
    size, pad = 220, 26
    image = Image.new("RGB", (size + 2 * pad + 90, size + 2 * pad), PAPER)
    draw = ImageDraw.Draw(image)
    x0, y0 = pad, pad + size
    for k in range(5):
        t = k / 4
        draw.line([(x0 + t * size, pad), (x0 + t * size, y0)], fill=GRID)
        draw.line([(x0, y0 - t * size), (x0 + size, y0 - t * size)], fill=GRID)
    draw.rectangle([x0, pad, x0 + size, y0], outline=INK)
    draw.line([(x0, y0), (x0 + size, pad)], fill=(150, 150, 150))
    colours = {"strokes": (200, 80, 40), "change": (40, 90, 200)}
    for name, curve in curves.items():
        n = len(curve) - 1
        draw.line([(x0 + i / n * size, y0 - float(v) * size) for i, v in enumerate(curve)], fill=colours[name], width=2)
    draw.text((x0, y0 + 6), "share of frames", fill=INK)
    draw.text((4, 6), "share of visible change", fill=INK)
    for i, name in enumerate(("strokes", "change", "even")):
        y = pad + 10 + 16 * i
        draw.line([(x0 + size + 10, y + 6), (x0 + size + 26, y + 6)], fill=colours.get(name, (150, 150, 150)), width=2)
        draw.text((x0 + size + 30, y), name, fill=INK)
    _save(image, "pacing.jpg")


def transition_strip(studio) -> None:
    """Transition: A unpainted back to half depth, then B painted forward."""
    from latent_painter.painter.engine.paint import PaintOptions
    from latent_painter.painter.engine.transition import Route, transition

    painting = transition([studio.plan("astronaut"), studio.plan("chelsea")], (strokes(),), Route(depth=0.5),
                          PaintOptions(frames=60, pacing="change", cleanup_frames=12))
    picks = [frame_at(painting, s) for s in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]
    _save(_picture([_small(studio.decode(painting.frames[picks]), 96)],
                   ["A -> B, depth 0.5: A is unpainted through its own predictions, B painted forward"]),
          "transition.jpg")


def plan_strip(studio) -> None:
    """A plan: the predicted originals of a run, from the first step (rough) to the last."""
    plan = studio.plan("astronaut")
    picks = torch.linspace(0, plan.originals.shape[0] - 1, 5).round().long()
    _save(_picture([_small(studio.decode(plan.originals[picks]), 96)],
                   ["a plan: the model's predicted final image at steps 1 to the last"]), "plan.jpg")


PICTURES = (strokes_and_maps, actions, canvases, pacing_plot, transition_strip, plan_strip)


def main(argv: list[str]) -> int:
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    studio = Studio(argv[0] if argv else None)
    for make in PICTURES:
        make(studio)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
