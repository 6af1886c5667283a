"""Paint a plan with a painter chain: the painted frames (a LATENT batch) and their stroke map (a MASK)."""

from __future__ import annotations

from ..painter.output import coverage_mask
from ..painter.paint import PROGRESS_STEPS, paint
from . import host
from .common import (
    CALIBRATION_VAE,
    CATEGORY,
    PAINTER,
    PLAN,
    first_item,
    paint_option_inputs,
    paint_options,
    painter_chain,
    plan_input,
    reporting,
)


class LatentPainterPaint:
    DISPLAY_NAME = "Paint"
    DESCRIPTION = (
        "Paints the plan stroke by stroke onto a canvas (by default the empty, all-zero latent) and returns the "
        "frames as a LATENT batch: the first frame is the canvas, the last is the plan's final latent bit for bit. "
        "Decode with Decode Frames (or VAE Decode)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "paint"
    RETURN_TYPES = ("LATENT", "MASK", "INT")
    RETURN_NAMES = ("frames", "stroke_map", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The painted frames [N,C,H,W] as one LATENT batch.",
        "Where strokes have landed so far, per frame [N,H,W] at latent resolution: the cumulative stroke coverage "
        "divided by its largest value over all frames (0 = never painted, 1 = the most painted place). "
        "Feed it to Decode Frames for a white canvas or a side-by-side stroke map.",
        "The number of frames N.",
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
                "canvas": ("LATENT", {"tooltip": "The initial canvas (batch item 0), e.g. an encoded white image for "
                                                 "painting on paper. Same size and channels as the plan. Default: all zeros."}),
                "vae": CALIBRATION_VAE,
            },
        }

    def paint(self, plan, painter, frames, pacing, cleanup_frames, seed, canvas=None, vae=None):
        node = type(self)
        plan_input(plan, node)
        painter_chain(painter, node, "painter")
        start = None if canvas is None else first_item(canvas, node, "canvas")
        options = paint_options(node, frames, pacing, cleanup_frames, seed)
        report = host.progress(PROGRESS_STEPS)
        with reporting(node):
            painting = paint(plan, painter, options, start, progress=report, where=node.DISPLAY_NAME,
                             decode=None if vae is None else vae.decode)
        return ({"samples": painting.frames}, coverage_mask(painting.coverage), len(painting))


NODES = (LatentPainterPaint,)
