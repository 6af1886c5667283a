"""From painted latents to a video-ready IMAGE batch: bounded decoding and frame assembly."""

from __future__ import annotations

from ..painter.engine.limits import checked, widget
from ..painter.render.composite import StrokeMaps
from ..painter.render.decoding import decode_frames
from ..painter.render.play import assemble, fps_for_duration
from ..painter.render.spans import IncrementalStats
from . import host
from .common import CATEGORY, DECODE_INPUT, STROKE_MAPS, decoding, latent_samples, node_error, report_decoding, reporting


class LatentPainterDecodeFrames:
    DISPLAY_NAME = "Decode Frames"
    DESCRIPTION = (
        "Decodes painted frames with a VAE in bounded chunks (memory: the output plus one chunk), with a progress "
        "bar and Cancel. Optionally shows never-painted areas as white paper and puts the stroke map beside each frame."
    )
    CATEGORY = CATEGORY
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The decoded frames [N,H,W,3] (twice as wide with the stroke map beside them).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("VAE", {"tooltip": "The VAE of the model that made the plan (same latent space)."}),
                "frames": ("LATENT", {"tooltip": "The painted frames from Paint."}),
                "chunk_size": ("INT", widget("chunk_size", default=16,
                                             tooltip="Frames per VAE call; lower uses less memory, higher may be faster.")),
                "white_canvas": ("BOOLEAN", {"default": False,
                                             "tooltip": "Show areas no stroke has touched yet as white paper, with soft round "
                                                        "edges (needs stroke_maps or stroke_map). The final frame is always "
                                                        "shown as decoded. With a white Canvas connected to Paint the paper "
                                                        "is in the latent already; this mask is for other canvases."}),
                "stroke_map_side_by_side": ("BOOLEAN", {"default": False,
                                                        "tooltip": "Put the stroke map to the right of each frame: grey = "
                                                                   "painted so far, this frame's strokes in the colour of "
                                                                   "their latent channel (needs stroke_maps; with only "
                                                                   "stroke_map the map is grey)."}),
            },
            "optional": {
                "stroke_map": ("MASK", {"tooltip": "Paint's stroke_map output for these frames (same frame count): "
                                                   "coverage only, so a side-by-side map is grey. Prefer stroke_maps."}),
                "stroke_maps": (STROKE_MAPS, {"tooltip": "Paint's or Transition's stroke_maps output for these frames: "
                                                         "the coloured side-by-side map and the white canvas. Used "
                                                         "instead of stroke_map when both are connected."}),
                "decode": DECODE_INPUT,
            },
        }

    def decode(self, vae, frames, chunk_size, white_canvas, stroke_map_side_by_side, stroke_map=None, stroke_maps=None,
               decode=None):
        node = type(self)
        latents = latent_samples(frames, node, "frames")
        if stroke_maps is not None and not isinstance(stroke_maps, StrokeMaps):
            raise node_error(node, "stroke_maps", "is not a painting's stroke maps; connect Paint's or Transition's "
                                                  "stroke_maps output")
        if (white_canvas or stroke_map_side_by_side) and stroke_map is None and stroke_maps is None:
            wanted = "white_canvas" if white_canvas else "stroke_map_side_by_side"
            raise node_error(node, "stroke_maps", f"{wanted} needs them; connect Paint's stroke_maps output (or its "
                                                  f"stroke_map) or turn {wanted} off")
        if stroke_maps is None and stroke_map is not None and (white_canvas or stroke_map_side_by_side):
            # A MASK carries the coverage only: the map shows it in grey, without per-channel stroke colours.
            stroke_maps = StrokeMaps.from_coverage(stroke_map, latents.shape[1])
        report, stats = host.progress(latents.shape[0]), IncrementalStats()
        with reporting(node):
            images = decode_frames(
                host.decoder_view(vae), latents, int(chunk_size),
                coverage=stroke_maps.coverage if white_canvas else None, white_canvas=bool(white_canvas),
                stroke_map=stroke_maps if stroke_map_side_by_side else False, progress=report,
                mode=decoding(decode), stats=stats,
            )
        return {"ui": {"text": [report_decoding(node, stats)]}, "result": (images,)}


class LatentPainterAssembleFrames:
    DISPLAY_NAME = "Assemble Frames"
    DESCRIPTION = (
        "Joins frame sequences into one animation: holds on the first and last frame, optional ping-pong loop, "
        "and a frame rate (or a duration). Feed images and fps to Save Animated WEBP or Create Video."
    )
    CATEGORY = CATEGORY
    FUNCTION = "assemble"
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("images", "fps")
    OUTPUT_TOOLTIPS = (
        "The assembled frames.",
        "Frames per second: 'fps', or the rate that plays all frames in 'duration_seconds'.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames (e.g. from Decode Frames)."}),
                "hold_first": ("INT", widget("hold", default=0,
                                             tooltip="Extra copies of the first frame (a pause before painting starts).")),
                "hold_last": ("INT", widget("hold", default=24,
                                            tooltip="Extra copies of the last frame (a pause on the finished image).")),
                "pingpong": ("BOOLEAN", {"default": False,
                                         "tooltip": "Play forward, then backward to the start, for a seamless loop."}),
                "fps": ("FLOAT", widget("fps", default=24.0, step=0.01, tooltip="Frame rate, used when duration_seconds is 0.")),
                "duration_seconds": ("FLOAT", widget("duration_seconds", default=0.0, step=0.1,
                                                     tooltip="Play all frames (holds included) in this many seconds; "
                                                             "0 = use fps. The author's demos run 20 s.")),
            },
            "optional": {
                "more_images": ("IMAGE", {"tooltip": "Frames appended after 'images' (same size), e.g. a transition or "
                                                     "another painting; a repeated join frame is kept once. Chain several "
                                                     "Assemble Frames nodes (holds 0) to join more."}),
            },
        }

    def assemble(self, images, hold_first, hold_last, pingpong, fps, duration_seconds, more_images=None):
        node = type(self)
        sequences = [images] if more_images is None else [images, more_images]
        with reporting(node):
            out = assemble(sequences, hold_first=int(hold_first), hold_last=int(hold_last), pingpong=bool(pingpong))
        if duration_seconds and duration_seconds > 0:
            with reporting(node, "duration_seconds"):
                rate = fps_for_duration(out.shape[0], float(duration_seconds))
        else:
            with reporting(node):
                rate = checked("fps", float(fps))
        return (out, rate)


NODES = (LatentPainterDecodeFrames, LatentPainterAssembleFrames)
