"""Renders the ``.jpg`` thumbnail of every example workflow with the pack's own engine.

Not part of the pack; a developer tool. Inside ComfyUI the plans come from a diffusion model;
here each thumbnail is painted from a *real photo* (scikit-image's sample images) through the
analytic stand-in run (``painter/tools/standin.py``) in the taef2 latent space and decoded with the
real TAESD weights (``painter/tools/taesd.py``): the same painters, actions, transitions, white canvas
and stroke map settings as the workflow, shown at one frame mid-way. Needs the demo extras
(scikit-image, pillow) and the taef2 weights:

    python workflows/make_thumbnails.py [TAESD_FOLDER]   # default: the lookup of painter/tools/weights.py
    python workflows/make_thumbnails.py --icon [TAESD_FOLDER]   # only the registry icon (pyproject's Icon)
    python workflows/make_thumbnails.py TAESD_FOLDER WORKFLOW_NAME...   # only these thumbnails
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
SIZE = 256  # pixels (a 32x32 latent)
STEPS = 20
QUALITY = 82
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


class Studio:
    def __init__(self, weights: str):
        from latent_painter.painter.tools import standin
        from latent_painter.painter.tools.demo import load_photos
        from latent_painter.painter.tools.weights import find_or_exit

        self.vae = find_or_exit(weights, families=("taef2",), program="make_thumbnails").load()
        self.latents = {name: self.vae.encode(load_photos([name], SIZE))[0] for name in PHOTOS}
        prior = torch.stack(list(self.latents.values()))
        self.fmt = standin.latent_format_from(prior)
        self.prior = prior
        self.plans = {}

    def plan(self, name: str):
        from latent_painter.painter.tools.standin import photo_plan

        if name not in self.plans:
            self.plans[name] = photo_plan(self.latents[name], self.prior, steps=STEPS, latent_format=self.fmt)
        return self.plans[name]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents)


def to_pil(image: torch.Tensor):
    from PIL import Image

    from latent_painter.painter.render.writers import to_uint8

    return Image.fromarray(to_uint8(image).numpy())


def frame_at(painting, share: float) -> int:
    return min(len(painting) - 1, max(0, round(share * (len(painting) - 1))))


def painted(studio, name, stages, share, frames=60, pacing="change", cleanup=12, canvas=None):
    """``canvas``: a Canvas node kind ('white', ...) encoded with the studio's VAE, or None for Paint's default
    without a VAE (the zero latent)."""
    from latent_painter.painter.engine.canvas import make_canvas
    from latent_painter.painter.engine.paint import PaintOptions, paint

    plan = studio.plan(name)
    start = None if canvas is None else make_canvas(canvas, plan.final, studio.vae.encode, studio.decode)
    painting = paint(plan, stages, PaintOptions(frames=frames, pacing=pacing, cleanup_frames=cleanup), start)
    return painting, frame_at(painting, share)


def strokes(**over):
    from latent_painter.painter.engine.strokes import STROKE_PRESETS, Strokes

    preset = over.pop("preset", "stroke24")
    return Strokes(radii=STROKE_PRESETS[preset], **over)


# ---------------------------------------------------------------------- one per workflow
def thumb_capture(studio):
    painting, i = painted(studio, "chelsea", (strokes(),), 0.3, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_paint_an_image(studio):
    painting, i = painted(studio, "astronaut", (strokes(),), 0.3, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_custom_sampling(studio):
    painting, i = painted(studio, "coffee", (strokes(brush="soft"),), 0.3, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_white_canvas(studio):
    """Two output frames on a white Canvas (the first strokes on paper, then the image forming), each with the
    coloured stroke map that Paint's stroke_maps output gives Decode Frames."""
    from latent_painter.painter.render.composite import StrokeMaps
    from latent_painter.painter.render.decoding import decode_frames

    painting, _ = painted(studio, "chelsea", (strokes(brush="soft"),), 0.0, canvas="white")
    picks = [frame_at(painting, 0.05), frame_at(painting, 0.3)]
    maps = StrokeMaps.of(painting)
    maps = StrokeMaps(maps.coverage[picks], maps.strokes[picks], maps.channels[picks], maps.num_channels)
    images = decode_frames(studio.decode, painting.frames[picks], white_canvas=True, stroke_map=maps)
    return to_pil(torch.cat(list(images), 0))


def thumb_reveal_chain(studio):
    from latent_painter.painter.engine.actions import Action

    chain = (strokes(preset="stroke12", schedules=6), Action(kind="glow", schedules=4), Action(kind="flip", schedules=4),
             Action(kind="dissolve", schedules=3, block=4.0, fraction=0.5), Action(kind="fade"))
    painting, i = painted(studio, "coffee", chain, 0.35, frames=0, pacing="change", cleanup=24)
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def _transition(studio, names, share, pingpong=False, **route):
    from latent_painter.painter.engine.paint import PaintOptions
    from latent_painter.painter.engine.transition import Route, transition

    painting = transition([studio.plan(n) for n in names], (strokes(),), Route(**route),
                          PaintOptions(frames=60, pacing="change", cleanup_frames=12), pingpong=pingpong)
    i = frame_at(painting, share)
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_transition(studio):
    return _transition(studio, ("astronaut", "chelsea"), 0.4, depth=0.5)


def thumb_pingpong(studio):
    return _transition(studio, ("coffee", "chelsea"), 0.12, pingpong=True, depth=0.4, guidance=0.5,
                       interpolation="slerp")


def thumb_save_plan(studio):
    """A plan is the sequence of predictions: four of them, rough to sharp, in a 2x2 grid."""
    plan = studio.plan("astronaut")
    picks = [0, 4, 9, STEPS - 1]
    images = studio.decode(torch.stack([plan.originals[k] for k in picks]))
    half = F.interpolate(images.permute(0, 3, 1, 2), size=(SIZE // 2, SIZE // 2), mode="area").permute(0, 2, 3, 1)
    top, bottom = torch.cat([half[0], half[1]], 1), torch.cat([half[2], half[3]], 1)
    return to_pil(torch.cat([top, bottom], 0))


def thumb_load_plan(studio):
    painting, i = painted(studio, "rocket", (strokes(brush="square", move_cost=0.5),), 0.3, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


ICON = HERE / "preview" / "icon.jpg"
ICON_SIZE = 256


def icon(studio):
    """The pack's registry icon: the coffee cup part-way through its painting (soft strokes)."""
    painting, i = painted(studio, "coffee", (strokes(brush="soft"),), 0.4)
    return to_pil(studio.decode(painting.frames[i : i + 1])[0]).resize((ICON_SIZE, ICON_SIZE))
def thumb_render(studio):
    painting, i = painted(studio, "immunohistochemistry", (strokes(),), 0.3)
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def picture_painted(studio, name: str, share: float):
    """A photo painted as the 'picture' templates paint it: Plan From Image's plan (engine/picture.py) on white
    paper, paced by the decoder, one frame part-way."""
    from latent_painter.painter.engine.canvas import make_canvas
    from latent_painter.painter.engine.paint import PaintOptions, paint
    from latent_painter.painter.engine.picture import picture_plan
    from latent_painter.painter.tools.demo import load_photos

    plan = picture_plan(load_photos([name], SIZE)[0], studio.vae.encode, steps=STEPS)
    start = make_canvas("white", plan.final, studio.vae.encode, studio.decode)
    painting = paint(plan, (strokes(),), PaintOptions(frames=60), start, decode=studio.decode)
    i = frame_at(painting, share)
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_paint_a_picture(studio):
    return picture_painted(studio, "rocket", 0.35)


def thumb_paint_a_picture_with_your_model(studio):
    return picture_painted(studio, "chelsea", 0.35)


THUMBS = {
    "Capture any sampler and paint": thumb_capture,
    "Paint an image": thumb_paint_an_image,
    "Paint with custom sampling": thumb_custom_sampling,
    "White canvas and stroke map": thumb_white_canvas,
    "Reveal actions chain": thumb_reveal_chain,
    "Transition between two checkpoints": thumb_transition,
    "Ping-pong loop": thumb_pingpong,
    "Save a plan": thumb_save_plan,
    "Load a plan and paint it": thumb_load_plan,
    "Render a long painting to video": thumb_render,
    "Paint a picture you have": thumb_paint_a_picture,
    "Paint a picture with your model": thumb_paint_a_picture_with_your_model,
}



# issue 27: the diffusion-model loader shape and the fast TAESD render
def thumb_diffusion_model(studio):
    painting, i = painted(studio, "chelsea", (strokes(),), 0.6, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


def thumb_fast_render(studio):
    painting, i = painted(studio, "coffee", (strokes(),), 0.6, canvas="white")
    return to_pil(studio.decode(painting.frames[i : i + 1])[0])


THUMBS.update({"Paint with a diffusion model, text encoder and VAE": thumb_diffusion_model,
               "Render fast with TAESD": thumb_fast_render})

def main(argv: list[str]) -> int:
    only_icon = "--icon" in argv
    argv = [arg for arg in argv if arg != "--icon"]
    weights = argv[0] if argv else None
    torch.manual_seed(0)
    studio = Studio(weights)
    icon(studio).save(ICON, "JPEG", quality=QUALITY, optimize=True)
    print(f"wrote {ICON.name}: {ICON.stat().st_size} bytes")
    if only_icon:
        return 0
    only = set(argv[1:])
    for stem, make in THUMBS.items():
        if only and stem not in only:
            continue
        if not (HERE / f"{stem}.json").is_file():
            print("skip (no workflow):", stem)
            continue
        path = HERE / f"{stem}.jpg"
        make(studio).save(path, "JPEG", quality=QUALITY, optimize=True, progressive=True)
        print(f"wrote {path.name}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
