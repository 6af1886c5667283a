"""Render painted frames straight to an animated WEBP or an MP4 file, one chunk in memory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..painter.engine.limits import widget
from ..painter.render.composite import StrokeMaps
from ..painter.render.decoding import decoded_chunks
from ..painter.render.play import played_count
from ..painter.render.sink import render
from ..painter.render.spans import IncrementalStats
from ..painter.render.writers import WRITERS, Encoding, require_encoder
from . import host
from .common import CATEGORY, DECODE_INPUT, STROKE_MAPS, decoding, latent_samples, node_error, report_decoding, reporting


@dataclass(frozen=True)
class Segment:
    """The inputs of one segment: its frames, the coverage MASK of the first version of the node, and
    the coloured stroke maps added later (inputs are only ever appended, so saved links hold)."""

    frames: str
    mask: str
    maps: str


SEGMENTS = tuple(Segment(f"frames{suffix}", f"stroke_map{suffix}", f"stroke_maps{suffix}") for suffix in ("", "_2", "_3", "_4"))


class LatentPainterRender:
    DISPLAY_NAME = "Render"
    DESCRIPTION = (
        "Decodes painted frames and writes them straight into an animated WEBP or an MP4 in the output folder, chunk "
        "by chunk: memory stays at one chunk of frames whatever the length. Holds, ping-pong, white canvas and a stroke "
        "map beside the frames as in Decode Frames + Assemble Frames; up to four segments (a painting, then "
        "transitions) play one after another. The file appears only when complete (Cancel leaves none); the node "
        "shows it animated and says how it decoded."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    OUTPUT_NODE = True
    RETURN_TYPES = ("VIDEO", "INT")
    RETURN_NAMES = ("video", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The MP4 file as a core VIDEO (for Save Video, Get Video Components, ...); mp4 format only.",
        "The number of frames played (holds and the way back included).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        later = {}
        for number, segment in enumerate(SEGMENTS[1:], start=2):
            later[segment.frames] = ("LATENT", {"tooltip": f"Segment {number}: frames played after the previous segment "
                                                           "(e.g. a Transition from its final image); a repeated join "
                                                           "frame is shown once. Same latent size as 'frames'."})
            later[segment.mask] = ("MASK", {"tooltip": f"The stroke_map of {segment.frames} (needed with white_canvas "
                                                       "or stroke_map_side_by_side)."})
        maps = {segment.maps: (STROKE_MAPS, {"tooltip": f"Paint's or Transition's stroke_maps output for "
                                                        f"{segment.frames}: the side-by-side map with each stroke in the "
                                                        "colour of its latent channel (as in Decode Frames), and the white "
                                                        f"canvas. Used instead of {segment.mask} when both are connected."})
                for segment in SEGMENTS}
        return {
            "required": {
                "frames": ("LATENT", {"tooltip": "The painted frames from Paint (or Transition)."}),
                "vae": ("VAE", {"tooltip": "The VAE of the model that made the plan (same latent space)."}),
                "filename_prefix": ("STRING", {"default": "latent_painter/render",
                                               "tooltip": "Where the file goes in the output folder; a number and the "
                                                          "format's extension are appended, as core Save nodes do."}),
                "format": (list(WRITERS), {"default": "mp4",
                                           "tooltip": "mp4: H.264, small files, for players and core video nodes. webp: "
                                                      "animated WEBP, plays in any browser and image viewer."}),
                "fps": ("FLOAT", widget("fps", default=24.0, step=0.01, tooltip="Frames per second. The author's demos "
                                        "play ~1,000 frames in 20 s (50 fps).")),
                "quality": ("INT", widget("quality", default=80, tooltip="webp: lossy quality, 100 = lossless. mp4: x264 "
                                          "CRF = 51 - 0.4 x quality (80 -> CRF 19, visually lossless; lower is smaller).")),
                "hold_first": ("INT", widget("hold", default=0,
                                             tooltip="Extra copies of the first frame (a pause before painting starts).")),
                "hold_last": ("INT", widget("hold", default=24,
                                            tooltip="Extra copies of the last frame (a pause on the finished image).")),
                "pingpong": ("BOOLEAN", {"default": False,
                                         "tooltip": "Play forward, then backward to the start, for a seamless loop "
                                                    "(the way back is read back from a temporary file, not decoded again)."}),
                "white_canvas": ("BOOLEAN", {"default": False,
                                             "tooltip": "Show areas no stroke has touched yet as white paper (needs "
                                                        "the stroke maps). The final frame is always shown as decoded."}),
                "stroke_map_side_by_side": ("BOOLEAN", {"default": False,
                                                        "tooltip": "Put the stroke map (grey = painted so far) to the "
                                                                   "right of each frame (needs the stroke maps)."}),
                "chunk_size": ("INT", widget("chunk_size", default=4,
                                             tooltip="Frames per VAE call: memory grows with it, not with the frame count "
                                                     "(taef2 on a CPU: ~270 MiB per 512x512 frame of the chunk).")),
            },
            "optional": {
                "stroke_map": ("MASK", {"tooltip": "Paint's stroke_map output for 'frames' (same frame count)."}),
                **later,
                "decode": DECODE_INPUT,
                **maps,
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def render(self, frames, vae, filename_prefix, format, fps, quality, hold_first, hold_last, pingpong,
               white_canvas, stroke_map_side_by_side, chunk_size, stroke_map=None, frames_2=None, stroke_map_2=None,
               frames_3=None, stroke_map_3=None, frames_4=None, stroke_map_4=None, decode=None, stroke_maps=None,
               stroke_maps_2=None, stroke_maps_3=None, stroke_maps_4=None, prompt=None, extra_pnginfo=None):
        node = type(self)
        connected = {"frames": frames, "stroke_map": stroke_map, "stroke_maps": stroke_maps,
                     "frames_2": frames_2, "stroke_map_2": stroke_map_2, "stroke_maps_2": stroke_maps_2,
                     "frames_3": frames_3, "stroke_map_3": stroke_map_3, "stroke_maps_3": stroke_maps_3,
                     "frames_4": frames_4, "stroke_map_4": stroke_map_4, "stroke_maps_4": stroke_maps_4}
        for segment in SEGMENTS[1:]:
            for name in (segment.mask, segment.maps):
                if connected.get(name) is not None and connected.get(segment.frames) is None:
                    raise node_error(node, name, f"is connected but its frames are not; connect {segment.frames} too")
        with reporting(node):
            encoding = Encoding(format, float(fps), int(quality))
            require_encoder(encoding.format)
        wanted_by = "white_canvas" if white_canvas else "stroke_map_side_by_side" if stroke_map_side_by_side else None
        segments = [(segment, latent_samples(connected[segment.frames], node, segment.frames),
                     *self._maps(segment, connected, wanted_by))
                    for segment in SEGMENTS if connected.get(segment.frames) is not None]
        lengths = [int(latents.shape[0]) for _, latents, _, _ in segments]
        with reporting(node):
            total = played_count(sum(lengths), int(hold_first), int(hold_last), bool(pingpong))
        grand = total - int(hold_first) - int(hold_last)  # the frames decoded, then those read back
        report = host.progress(grand)
        view, mode = host.decoder_view(vae), decoding(decode)
        stats, chunks, offset = [], [], 0
        for (segment, latents, maps, maps_input), length in zip(segments, lengths):
            stats.append(IncrementalStats())  # each segment starts on a full decode: its own spans and stats
            if maps is not None and tuple(maps.coverage.shape) != (length, *latents.shape[2:]):
                raise node_error(node, maps_input, f"has shape {tuple(maps.coverage.shape)} but {segment.frames} "
                                                   f"needs {(length, *map(int, latents.shape[2:]))} (one map per frame); "
                                                   f"connect the {maps_input.rstrip('_234')} that came with {segment.frames}")
            with reporting(node, segment.frames):
                chunks.append(_named(node, segment.frames, decoded_chunks(
                    view, latents, int(chunk_size), coverage=maps.coverage if white_canvas else None,
                    white_canvas=bool(white_canvas), stroke_map=maps if stroke_map_side_by_side else False,
                    progress=lambda done, _of, offset=offset: report(offset + done, grand), mode=mode, stats=stats[-1])))
            offset += length
        back = {"done": 0}

        def read_back(frames_read):
            back["done"] += frames_read
            report(sum(lengths) + back["done"], grand)

        folder, filename, counter, subfolder = host.save_location(filename_prefix)
        name = f"{filename}_{counter:05}_.{encoding.format}"
        metadata = {"prompt": json.dumps(prompt)} if prompt is not None else {}
        metadata.update({key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()})
        with reporting(node):
            rendered = render(chunks, os.path.join(folder, name), encoding, hold_first=int(hold_first),
                              hold_last=int(hold_last), pingpong=bool(pingpong), progress=read_back, metadata=metadata)
        report(grand, grand)
        texts = [report_decoding(node, segment_stats) for segment_stats in stats]
        if encoding.format == "mp4":
            handed_on = host.video_from_file(rendered.path)
        else:
            handed_on = host.blocked_output(
                f"{node.DISPLAY_NAME}: video: the VIDEO output carries mp4 renders only (core video nodes cannot read "
                "animated WEBP); set format to mp4 to pass the file on"
            )
        ui = {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": (True,),
              "text": texts}
        return {"ui": ui, "result": (handed_on, rendered.frames)}

    @staticmethod
    def _maps(segment: Segment, connected: dict, wanted_by: str | None) -> tuple[StrokeMaps | None, str]:
        """A segment's stroke maps, and the input they came from, when ``wanted_by`` (white_canvas or
        stroke_map_side_by_side) needs them: the coloured maps, else the coverage MASK (a grey map)."""
        node = LatentPainterRender
        maps, mask = connected.get(segment.maps), connected.get(segment.mask)
        if maps is not None and not isinstance(maps, StrokeMaps):
            raise node_error(node, segment.maps, "is not a painting's stroke maps; connect Paint's or Transition's "
                                                 "stroke_maps output")
        if wanted_by is None:
            return None, segment.maps
        if maps is None and mask is None:
            raise node_error(node, segment.maps, f"{wanted_by} needs them; connect the stroke_maps output that came "
                                                 f"with {segment.frames} (or its stroke_map), or turn {wanted_by} off")
        if maps is not None:
            return maps, segment.maps
        latents = latent_samples(connected[segment.frames], node, segment.frames)
        return StrokeMaps.from_coverage(mask, latents.shape[1]), segment.mask  # coverage only: a grey map


def _named(node, input_name: str, chunks):
    """``chunks`` whose errors, raised while the file is written, name the node and the input."""
    with reporting(node, input_name):
        yield from chunks


NODES = (LatentPainterRender,)
