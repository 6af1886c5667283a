"""From painted latents to a video-ready IMAGE batch: bounded decoding and frame assembly."""

from __future__ import annotations

import logging

from ..painter import incremental, output
from . import host
from .common import CATEGORY, latent_samples, node_error, reporting

MAX_SECONDS = 3600.0


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
                "chunk_size": ("INT", {"default": 16, "min": 1, "max": 4096,
                                       "tooltip": "Frames per VAE call; lower uses less memory, higher may be faster."}),
                "white_canvas": ("BOOLEAN", {"default": False,
                                             "tooltip": "Show areas no stroke has touched yet as white paper (needs stroke_map). "
                                                        "The final frame is always shown as decoded."}),
                "stroke_map_side_by_side": ("BOOLEAN", {"default": False,
                                                        "tooltip": "Put the stroke map (grey = painted so far) to the right of "
                                                                   "each frame (needs stroke_map)."}),
            },
            "optional": {
                "stroke_map": ("MASK", {"tooltip": "Paint's stroke_map output for these frames (same frame count)."}),
                "decode": (list(incremental.DECODE_MODES), {
                    "default": "full",
                    "tooltip": "full: decode every frame whole. incremental: decode only where a frame changed and paste "
                               f"it into the previous one, every frame within {incremental.IncrementalOptions().min_psnr:g} dB "
                               "PSNR of its full decode (checked against full decodes; the last frame is one). "
                               "Several times faster with TAESD VAEs; other VAEs (global attention) decode in full."}),
            },
        }

    def decode(self, vae, frames, chunk_size, white_canvas, stroke_map_side_by_side, stroke_map=None, decode=None):
        node = type(self)
        latents = latent_samples(frames, node, "frames")
        if (white_canvas or stroke_map_side_by_side) and stroke_map is None:
            wanted = "white_canvas" if white_canvas else "stroke_map_side_by_side"
            raise node_error(node, "stroke_map", f"{wanted} needs it; connect Paint's stroke_map output or turn {wanted} off")
        maps = False
        if stroke_map_side_by_side:
            # A MASK carries the coverage only: the map shows it in grey, without per-channel stroke colours.
            maps = output.StrokeMaps.from_coverage(stroke_map, latents.shape[1])
        decode = "full" if decode is None else decode  # workflows saved before the widget existed
        if decode not in incremental.DECODE_MODES:
            raise node_error(node, "decode", f"unknown mode {decode!r}; use one of {', '.join(incremental.DECODE_MODES)}")
        decoder, options = vae.decode, None
        if decode == "incremental":
            decoder, options = host.staged_decoder(vae), incremental.IncrementalOptions()
        stats = incremental.IncrementalStats()
        report = host.progress(latents.shape[0])
        with reporting(node):
            images = output.decode_frames(
                decoder, latents, int(chunk_size),
                coverage=stroke_map if white_canvas else None, white_canvas=bool(white_canvas), stroke_map=maps,
                progress=report, incremental=options, incremental_stats=stats, where=node.DISPLAY_NAME,
            )
        if options is not None:
            logging.info("%s: incremental decoding: %s", node.DISPLAY_NAME, stats.summary())
        return (images,)


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
                "hold_first": ("INT", {"default": 0, "min": 0, "max": output.MAX_ASSEMBLED_FRAMES,
                                       "tooltip": "Extra copies of the first frame (a pause before painting starts)."}),
                "hold_last": ("INT", {"default": 24, "min": 0, "max": output.MAX_ASSEMBLED_FRAMES,
                                      "tooltip": "Extra copies of the last frame (a pause on the finished image)."}),
                "pingpong": ("BOOLEAN", {"default": False,
                                         "tooltip": "Play forward, then backward to the start, for a seamless loop."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                  "tooltip": "Frame rate, used when duration_seconds is 0."}),
                "duration_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": MAX_SECONDS, "step": 0.1,
                                               "tooltip": "Play all frames (holds included) in this many seconds; "
                                                          "0 = use fps. The author's demos run 20 s."}),
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
            out = output.assemble(
                sequences, hold_first=int(hold_first), hold_last=int(hold_last), pingpong=bool(pingpong),
                where=node.DISPLAY_NAME,
            )
        if duration_seconds and duration_seconds > 0:
            with reporting(node, "duration_seconds"):
                rate = output.fps_for_duration(out.shape[0], float(duration_seconds))
        else:
            rate = float(fps)
            if not rate > 0:
                raise node_error(node, "fps", f"must be above 0, got {fps}; use e.g. 24, or set duration_seconds")
        return (out, rate)


NODES = (LatentPainterDecodeFrames, LatentPainterAssembleFrames)
