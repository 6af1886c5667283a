"""Transitions between plans (A -> B, chains A -> B -> C -> D, ping-pong) and the lerp/slerp baseline."""

from __future__ import annotations

from ..painter.engine.interpolate import INTERPOLATIONS, lerp_latents, slerp_latents
from ..painter.engine.limits import checked, widget
from ..painter.engine.paint import PROGRESS_STEPS
from ..painter.engine.timeline import check_frame_budget
from ..painter.engine.transition import GUIDANCES, Route, transition
from ..painter.render.composite import StrokeMaps, coverage_mask
from . import host
from .common import (
    CALIBRATION_VAE,
    CATEGORY,
    PAINTER,
    PLAN,
    STROKE_MAPS,
    STROKE_MAPS_TOOLTIP,
    field_default,
    first_item,
    image_samples,
    latent_output,
    node_error,
    pacing_decoder,
    paint_option_inputs,
    paint_options,
    painter_chain,
    plan_input,
    reporting,
)

PLAN_TOOLTIP = (
    "A plan (from a Latent Painter Sampler, Plan From Latents or Load Plan). All plans of a transition must share "
    "one latent space (checkpoints with the same VAE family, e.g. two SD1.5 models)."
)


class LatentPainterTransition:
    DISPLAY_NAME = "Transition"
    DESCRIPTION = (
        "Paints a transition from plan A's image to plan B's (and on to C and D when connected): the canvas unpaints A "
        "back through its own predictions to the chosen depth, then paints B forward from the same depth, ending on "
        "B's final latent bit for bit. Guidance paints B over A region by region (crisp in-between frames for "
        "edits of one scene, never a cross-fade), or blends in interpolated latents. Decode with Decode Frames."
    )
    CATEGORY = CATEGORY
    FUNCTION = "transition"
    RETURN_TYPES = ("LATENT", "MASK", "INT", STROKE_MAPS)
    RETURN_NAMES = ("frames", "stroke_map", "frame_count", "stroke_maps")
    OUTPUT_TOOLTIPS = (
        "The frames of all legs [N,C,H,W] as one LATENT batch: the first is A's final latent, the last the last "
        "plan's (or A's, with pingpong); each join frame appears once.",
        "Where strokes have landed so far, per frame [N,H,W] at latent resolution, accumulated over all legs and "
        "divided by its largest value (0 = never painted). Feed it to Decode Frames.",
        "The number of frames N.",
        STROKE_MAPS_TOOLTIP,
    )

    @classmethod
    def INPUT_TYPES(cls):
        r = lambda name: field_default(Route, name)  # noqa: E731 - the engine's defaults
        return {
            "required": {
                "plan_a": (PLAN, {"tooltip": "Where the transition starts: " + PLAN_TOOLTIP}),
                "plan_b": (PLAN, {"tooltip": "Where the transition goes: " + PLAN_TOOLTIP}),
                "painter": (PAINTER, {"tooltip": "The painter chain (Painter / Painter Action stages) that paints every leg."}),
                "depth": ("FLOAT", widget("depth", default=r("depth"), step=0.01,
                                    tooltip="How far back each leg goes, as a share of the plans' schedules: 0 = straight "
                                            "from A to B; 1 = back to A's roughest prediction and up from B's roughest. "
                                            "Deeper is longer and blurrier in the middle; shallower keeps more detail.")),
                "guidance": ("FLOAT", widget("guidance", default=r("guidance"), step=0.01,
                                       tooltip="Weight of the guidance (see interpolation) in every target: 0 = the "
                                               "plans alone; 1 = the guidance alone (crisp, for two images that share "
                                               "a background, e.g. an edit of one scene). At depth 0 with over, lower "
                                               "guidance paints B over A sooner, never blending.")),
                "guidance_steps": ("INT", widget("guidance_steps", default=r("guidance_steps"),
                                           tooltip="Schedules of a leg when depth is 0 (the interpolated targets between "
                                                   "the two images); more gives a slower, smoother change.")),
                "interpolation": (list(GUIDANCES), {"default": r("interpolation"),
                                                    "tooltip": "How guidance goes from A to B: over = B painted over A "
                                                               "where they differ, region by region (every frame shows "
                                                               "each place as A's or B's, no ghost); lerp / slerp = "
                                                               "latents interpolated between the two (the paper's "
                                                               "guidance: the changed region cross-fades)."}),
                "pingpong": ("BOOLEAN", {"default": False,
                                         "tooltip": "Come back to A afterwards (A -> B -> A, or A -> ... -> D -> ... -> A): "
                                                    "a seamless loop."}),
                "resize": ("BOOLEAN", {"default": r("resize"),
                                       "tooltip": "Resize the other plans to plan A's latent size (bilinear) instead of "
                                                  "refusing plans of different sizes."}),
                **paint_option_inputs(
                    "Frames per leg including both ends (at least 2); a join frame is shown once. "
                    "0 = automatic: one frame per painting step of the chain.",
                    "Painting steps of each leg's closing fade that removes what the painter's restrictions "
                    "left, ending exactly on the leg's image.",
                ),
            },
            "optional": {
                "plan_c": (PLAN, {"tooltip": "Optional third image: the transition goes on A -> B -> C (a slideshow). "
                                             + PLAN_TOOLTIP}),
                "plan_d": (PLAN, {"tooltip": "Optional fourth image: A -> B -> C -> D (needs plan_c). " + PLAN_TOOLTIP}),
                "vae": CALIBRATION_VAE,
            },
        }

    def transition(self, plan_a, plan_b, painter, depth, guidance, guidance_steps, interpolation, pingpong, resize,
                   frames, pacing, cleanup_frames, seed, plan_c=None, plan_d=None, vae=None):
        node = type(self)
        if plan_d is not None and plan_c is None:
            raise node_error(node, "plan_d", "is connected but plan_c is not; connect the third image to plan_c first "
                                             "(the chain runs A -> B -> C -> D)")
        named = [("plan_a", plan_a), ("plan_b", plan_b), ("plan_c", plan_c), ("plan_d", plan_d)]
        plans = [plan_input(plan, node, name) for name, plan in named if plan is not None]
        stages = painter_chain(painter, node, "painter")
        with reporting(node):
            route = Route(depth=float(depth), guidance=float(guidance), guidance_steps=int(guidance_steps),
                          interpolation=interpolation, resize=bool(resize))
        options = paint_options(node, frames, pacing, cleanup_frames, seed)
        decode = pacing_decoder(node, options.pacing, vae)
        legs = (len(plans) - 1) * (2 if pingpong else 1)
        report = host.progress(legs * PROGRESS_STEPS)
        with reporting(node):
            painting = transition(plans, stages, route, options, pingpong=bool(pingpong), progress=report,
                                  decode=decode)
        time_axis = any(plan.latent_format.time_axis for plan in plans)
        return (latent_output(painting.frames, time_axis), coverage_mask(painting.coverage), len(painting),
                StrokeMaps.of(painting))


class LatentPainterInterpolate:
    DISPLAY_NAME = "Interpolate Latents (baseline)"
    DESCRIPTION = (
        "The classic baseline for transitions: latents interpolated straight (lerp) or spherically (slerp) between "
        "two latents, both ends exact. Decode them beside a Transition to compare: plain interpolation ghosts "
        "and blurs mid-way."
    )
    CATEGORY = CATEGORY
    FUNCTION = "interpolate"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The interpolated latents [N,C,H,W] as one LATENT batch: the first is latent_a, the last latent_b.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent_a": ("LATENT", {"tooltip": "Where the interpolation starts (batch item 0)."}),
                "latent_b": ("LATENT", {"tooltip": "Where it ends (batch item 0); same size and channels as latent_a."}),
                "frames": ("INT", widget("interpolated frames", default=24, tooltip="Number of latents including both ends.")),
                "interpolation": (list(INTERPOLATIONS), {"default": "slerp",
                                                         "tooltip": "lerp: straight line; slerp: along the great circle "
                                                                    "(keeps the norm of equal-norm latents)."}),
            }
        }

    def interpolate(self, latent_a, latent_b, frames, interpolation):
        node = type(self)
        samples_a, time_axis = image_samples(latent_a, node, "latent_a")
        a, b = samples_a[0], first_item(latent_b, node, "latent_b")
        if a.shape != b.shape:
            raise node_error(
                node, "latent_b",
                f"is {tuple(b.shape)} [C,H,W] but latent_a is {tuple(a.shape)}; interpolate latents of the same model "
                "family and size (same channels, width and height)",
            )
        if interpolation not in INTERPOLATIONS:
            raise node_error(node, "interpolation", f"{interpolation!r} is unknown; use {' or '.join(INTERPOLATIONS)}")
        how = lerp_latents if interpolation == "lerp" else slerp_latents
        with reporting(node, "frames"):
            checked("interpolated frames", int(frames))
            check_frame_budget(int(frames), tuple(a.shape))
            return (latent_output(how(a, b, int(frames)), time_axis),)


NODES = (LatentPainterTransition, LatentPainterInterpolate)
