"""Paint a plan with a painter chain: the painted frames (a LATENT batch) and their stroke map (a MASK)."""

from __future__ import annotations

from ..painter.engine.canvas import default_canvas
from ..painter.engine.paint import PROGRESS_STEPS, paint
from ..painter.render.composite import StrokeMaps, coverage_mask
from . import host
from .common import (
    CALIBRATION_VAE,
    CATEGORY,
    PAINTER,
    PLAN,
    STROKE_MAPS,
    STROKE_MAPS_TOOLTIP,
    first_item,
    latent_output,
    paint_option_inputs,
    pacing_decoder,
    paint_options,
    painter_chain,
    plan_input,
    reporting,
    vae_input,
)


class LatentPainterPaint:
    DISPLAY_NAME = "Paint"
    DESCRIPTION = (
        "Paints the plan stroke by stroke onto a canvas and returns the frames as a LATENT batch: the first frame is "
        "the canvas, the last is the plan's final latent bit for bit. Connect a Canvas (white paper) for the author's "
        "look; without one, a connected VAE gives a canvas of the final image's mean colour, and no VAE the all-zero "
        "latent (pacing 'strokes' only: pacing 'change' needs the VAE). Decode with Decode Frames (or VAE Decode)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "paint"
    RETURN_TYPES = ("LATENT", "MASK", "INT", STROKE_MAPS)
    RETURN_NAMES = ("frames", "stroke_map", "frame_count", "stroke_maps")
    OUTPUT_TOOLTIPS = (
        "The painted frames [N,C,H,W] as one LATENT batch ([N,C,1,H,W] when the plan's latents have a time axis of one, as the Wan VAE decodes them).",
        "Where strokes have landed so far, per frame [N,H,W] at latent resolution: the cumulative stroke coverage "
        "divided by its largest value over all frames (0 = never painted, 1 = the most painted place). "
        "Feed it to Decode Frames for a white canvas or a grey side-by-side stroke map (stroke_maps gives colour).",
        "The number of frames N.",
        STROKE_MAPS_TOOLTIP,
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "plan": (PLAN, {"tooltip": "The plan to paint (from a Latent Painter Sampler, Plan From Latents or Load Plan)."}),
                "painter": (PAINTER, {"tooltip": "The painter chain (Painter / Painter Action stages)."}),
                **paint_option_inputs(
                    "Total frames including the first (the canvas) and the last (the final latent); at least 2. "
                    "0 = automatic: one frame per painting step of the chain.",
                    "Painting steps of the closing fade that removes what the painter's restrictions left, "
                    "ending exactly on the final latent.",
                ),
            },
            "optional": {
                "canvas": ("LATENT", {"tooltip": "The initial canvas (batch item 0): connect a Canvas node (white = paper, "
                                                 "as the author paints). Same size and channels as the plan. When not "
                                                 "connected: with a VAE connected, the final image's mean colour encoded "
                                                 "by it (a flat start that decodes without texture on every model); "
                                                 "without a VAE, the all-zero latent (which decodes to grey-brown in SD "
                                                 "and to a faint grid in FLUX.2)."}),
                "vae": (CALIBRATION_VAE[0], {**CALIBRATION_VAE[1],
                                             "tooltip": CALIBRATION_VAE[1]["tooltip"] + " When no canvas is connected, it "
                                                        "also makes the default canvas: the final image's mean colour, "
                                                        "encoded (one decode and one encode)."}),
            },
        }

    def paint(self, plan, painter, frames, pacing, cleanup_frames, seed, canvas=None, vae=None):
        node = type(self)
        plan_input(plan, node)
        painter_chain(painter, node, "painter")
        options = paint_options(node, frames, pacing, cleanup_frames, seed)
        decode = pacing_decoder(node, options.pacing, vae)
        start = None if canvas is None else first_item(canvas, node, "canvas")
        if start is None and vae is not None:
            vae_input(vae, node)
            with reporting(node, "vae"):
                start = default_canvas(plan.final, host.image_encode(vae), host.image_decode(vae),
                                       scale=host.vae_scale(vae))
        report = host.progress(PROGRESS_STEPS)
        with reporting(node):
            painting = paint(plan, painter, options, start, progress=report, decode=decode)
        frames = latent_output(painting.frames, plan.latent_format.time_axis)
        return (frames, coverage_mask(painting.coverage), len(painting), StrokeMaps.of(painting))


NODES = (LatentPainterPaint,)
