"""Painter configuration: stroke runs and reveal actions, chained into a PAINTER (a tuple of stages).

A PAINTER is pure configuration (``painter.paint.stages_to_json`` turns it into JSON); each node
appends one stage to the optional ``previous`` chain. Stages paint consecutive schedules of the plan
in chain order (``schedules`` per stage, 0 = a share of the rest).
"""

from __future__ import annotations

from ..painter.engine.actions import REVEALS, Action
from ..painter.engine.gain import BRUSHES
from ..painter.engine.limits import widget
from ..painter.engine.strokes import STROKE_PRESETS, Strokes
from .common import CATEGORY, PAINTER, field_default, node_error, painter_chain, parse_channels, reporting


CHANNELS_TOOLTIP = (
    "Latent channels this stage may paint, e.g. '0,2-3' (0-based). Empty = all channels. "
    "Channels outside the plan's latent are refused when painting."
)
SCHEDULES_TOOLTIP = (
    "How many schedules (denoising steps of the plan) this stage paints, counted in chain order. "
    "0 = an equal share of the schedules no stage claimed."
)
PREVIOUS_TOOLTIP = "A painter chain to continue: this stage paints the schedules after the previous stages'."


def chain(previous, stage, node):
    """``previous`` (a PAINTER or None) with ``stage`` appended."""
    if previous is None:
        return (stage,)
    return painter_chain(previous, node, "previous") + (stage,)


class LatentPainterStrokes:
    DISPLAY_NAME = "Painter"
    DESCRIPTION = (
        "A stroke painter: per schedule it spends a run of brush strokes, each in the channel and at the place "
        "where the canvas lacks most of the plan. Connect to Paint, or chain with more Painter / Painter Action stages."
    )
    CATEGORY = CATEGORY
    FUNCTION = "configure"
    RETURN_TYPES = (PAINTER,)
    RETURN_NAMES = ("painter",)
    OUTPUT_TOOLTIPS = ("The painter chain (this stage appended to 'previous').",)

    @classmethod
    def INPUT_TYPES(cls):
        d = lambda name: field_default(Strokes, name)  # noqa: E731 - the engine's defaults
        return {
            "required": {
                "preset": (list(STROKE_PRESETS), {"default": "stroke24",
                                           "tooltip": "Strokes per schedule and their sizes: stroke24 is the author's "
                                                      "24-stroke ramp (radius 1 to 12 latent pixels); stroke12/stroke8 "
                                                      "paint faster with fewer strokes, stroke48 slower with twice as many."}),
                "brush": (list(BRUSHES), {"default": d("brush"),
                                          "tooltip": "Stroke shape: disk, square, or soft (cosine fall-off at the edge)."}),
                "channels": ("STRING", {"default": "", "tooltip": CHANNELS_TOOLTIP}),
                "move_cost": ("FLOAT", widget("move_cost", default=d("move_cost"), step=0.01,
                                        tooltip="Penalty for moving the brush far from the previous stroke; "
                                                "higher makes strokes walk in a path like a hand. 0 = none.")),
                "switch_cost": ("FLOAT", widget("switch_cost", default=d("switch_cost"), step=0.01,
                                          tooltip="Penalty for changing the painting channel, as a share of the best "
                                                  "channel's gain; large values keep one channel per schedule.")),
                "motivation": ("FLOAT", widget("motivation", default=d("motivation"), step=0.01,
                                         tooltip="A place takes a stroke only once its accumulated gain exceeds this "
                                                 "multiple of the mean; unspent strokes carry over. 0 = always.")),
                "size_scale": ("FLOAT", widget("size_scale", default=d("size_scale"), step=0.01,
                                         tooltip="Multiplies all stroke radii. 0 = scale with the latent (side / 64).")),
                "early_size": ("FLOAT", widget("early_size", default=d("early_size"), step=0.01,
                                         tooltip="Radius multiplier at the first schedule, easing to 1 at the last; "
                                                 ">1 paints rough first and fine last.")),
                "strokes_per_frame": ("INT", widget("strokes_per_frame", default=d("strokes_per_frame"),
                                              tooltip="Strokes one frame shows when Paint's pacing is 'strokes' and frames is 0.")),
                "schedules": ("INT", widget("schedules", default=d("schedules"), tooltip=SCHEDULES_TOOLTIP)),
            },
            "optional": {
                "previous": (PAINTER, {"tooltip": PREVIOUS_TOOLTIP}),
                "channels_per_stroke": ("INT", widget("channels_per_stroke", default=d("channels_per_stroke"),
                                                tooltip="Latent channels one stroke paints: the painting channel and "
                                                        "those that lack most under the stroke. 0 = automatic: 1 on "
                                                        "4-channel latents (SD1.5/SDXL, the paper's look), all channels "
                                                        "on any other (SD3/FLUX.1: 16, FLUX.2: 128, pixel space: 3), so "
                                                        "strokes fill whole latent pixels and show no decoder texture.")),
            },
        }

    def configure(self, preset, brush, channels, move_cost, switch_cost, motivation, size_scale, early_size,
                  strokes_per_frame, schedules, previous=None, channels_per_stroke=None):
        node = type(self)
        if preset not in STROKE_PRESETS:
            raise node_error(node, "preset", f"unknown preset {preset!r}; use one of {', '.join(STROKE_PRESETS)}")
        allowed = parse_channels(channels, node)
        with reporting(node):
            stage = Strokes(
                radii=STROKE_PRESETS[preset], brush=brush, channels=allowed, move_cost=float(move_cost),
                switch_cost=float(switch_cost), motivation=float(motivation), size_scale=float(size_scale),
                early_size=float(early_size), strokes_per_frame=int(strokes_per_frame), schedules=int(schedules),
                channels_per_stroke=0 if channels_per_stroke is None else int(channels_per_stroke),
            )
        return (chain(previous, stage, node),)


class RevealDescription:
    """The Painter Action description, read from the reveal registry whenever the host asks."""

    def __get__(self, instance, owner) -> str:
        kinds = "; ".join(f"{reveal.name} ({reveal.description})" for reveal in REVEALS.values())
        return f"A reveal action instead of strokes: {kinds}. Chain it with Painter stages."


class LatentPainterAction:
    DISPLAY_NAME = "Painter Action"
    DESCRIPTION = RevealDescription()
    CATEGORY = CATEGORY
    FUNCTION = "configure"
    RETURN_TYPES = (PAINTER,)
    RETURN_NAMES = ("painter",)
    OUTPUT_TOOLTIPS = ("The painter chain (this stage appended to 'previous').",)

    @classmethod
    def INPUT_TYPES(cls):
        d = lambda name: field_default(Action, name)  # noqa: E731 - the engine's defaults
        counts = ", ".join(f"{reveal.name} {reveal.default_frames}" for reveal in REVEALS.values())
        return {
            "required": {
                "kind": (list(REVEALS), {"default": d("kind"), "tooltip": "How the canvas moves toward each schedule's target: "
                                         + "; ".join(f"{r.name}: {r.description}" for r in REVEALS.values()) + "."}),
                "frames": ("INT", widget("action frames", default=d("frames"),
                                   tooltip=f"Frames (steps of the action) per schedule. 0 = the author's count ({counts}).")),
                "channels": ("STRING", {"default": "", "tooltip": CHANNELS_TOOLTIP}),
                "motivation": ("FLOAT", {"default": d("motivation"), "min": 0.0, "max": 100.0, "step": 0.01,
                                         "tooltip": "Change only places whose accumulated gain exceeds this multiple of the mean. 0 = everywhere."}),
                "block": ("FLOAT", widget("block", default=d("block"), step=0.1,
                                    tooltip="flip: block side; dissolve: cell size; in latent pixels of a 64x64 latent.")),
                "fraction": ("FLOAT", widget("fraction", default=d("fraction"), step=0.01,
                                       tooltip="dissolve: share of the cells revealed per schedule (the rest rolls over).")),
                "schedules": ("INT", widget("schedules", default=d("schedules"), tooltip=SCHEDULES_TOOLTIP)),
            },
            "optional": {
                "previous": (PAINTER, {"tooltip": PREVIOUS_TOOLTIP}),
            },
        }

    def configure(self, kind, frames, channels, motivation, block, fraction, schedules, previous=None):
        node = type(self)
        allowed = parse_channels(channels, node)
        with reporting(node):
            stage = Action(
                kind=kind, frames=int(frames), channels=allowed, motivation=float(motivation), block=float(block),
                fraction=float(fraction), schedules=int(schedules),
            )
        return (chain(previous, stage, node),)


NODES = (LatentPainterStrokes, LatentPainterAction)
