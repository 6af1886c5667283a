"""Render painted frames straight to an animated WEBP or an MP4 file, one chunk in memory."""

from __future__ import annotations

import json
import os

from ..painter.render import incremental, output, video
from . import host
from .common import (
    CATEGORY,
    DECODE_INPUT,
    STROKE_MAPS,
    latent_samples,
    log_incremental,
    node_error,
    reporting,
    staged_decoding,
)

# Segments after the first: (frames input, stroke map input), in play order.
MORE_SEGMENTS = (("frames_2", "stroke_map_2"), ("frames_3", "stroke_map_3"), ("frames_4", "stroke_map_4"))
# Each segment's coloured stroke maps (STROKE_MAPS), added after 'decode': inputs are only ever
# appended, so workflows saved before keep their links.
SEGMENT_MAPS = ("stroke_maps", "stroke_maps_2", "stroke_maps_3", "stroke_maps_4")


class LatentPainterRender:
    DISPLAY_NAME = "Render"
    DESCRIPTION = (
        "Decodes painted frames and writes them straight into an animated WEBP or an MP4 in the output folder, chunk "
        "by chunk: memory stays at one chunk of frames whatever the length. Holds, ping-pong, white canvas and a stroke "
        "map beside the frames as in Decode Frames + Assemble Frames; up to four segments (a painting, then "
        "transitions) play one after another. The file appears only when complete (Cancel leaves none); the node "
        "shows it animated."
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
        more = {}
        for number, (frames_name, map_name) in enumerate(MORE_SEGMENTS, start=2):
            more[frames_name] = ("LATENT", {"tooltip": f"Segment {number}: frames played after the previous segment "
                                                       "(e.g. a Transition from its final image); a repeated join "
                                                       "frame is shown once. Same latent size as 'frames'."})
            more[map_name] = ("MASK", {"tooltip": f"The stroke_map of {frames_name} (needed with white_canvas or "
                                                  "stroke_map_side_by_side)."})
        return {
            "required": {
                "frames": ("LATENT", {"tooltip": "The painted frames from Paint (or Transition)."}),
                "vae": ("VAE", {"tooltip": "The VAE of the model that made the plan (same latent space)."}),
                "filename_prefix": ("STRING", {"default": "latent_painter/render",
                                               "tooltip": "Where the file goes in the output folder; a number and the "
                                                          "format's extension are appended, as core Save nodes do."}),
                "format": (list(video.FORMATS), {"default": "mp4",
                                                 "tooltip": "mp4: H.264, small files, for players and core video "
                                                            "nodes. webp: animated WEBP, plays in any browser and "
                                                            "image viewer."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 0.01, "max": video.MAX_FPS, "step": 0.01,
                                  "tooltip": "Frames per second. The author's demos play ~1,000 frames in 20 s (50 fps)."}),
                "quality": ("INT", {"default": 80, "min": 0, "max": 100,
                                    "tooltip": "webp: lossy quality, 100 = lossless. mp4: x264 CRF = 51 - 0.4 x quality "
                                               "(80 -> CRF 19, visually lossless; lower is smaller)."}),
                "hold_first": ("INT", {"default": 0, "min": 0, "max": output.MAX_ASSEMBLED_FRAMES,
                                       "tooltip": "Extra copies of the first frame (a pause before painting starts)."}),
                "hold_last": ("INT", {"default": 24, "min": 0, "max": output.MAX_ASSEMBLED_FRAMES,
                                      "tooltip": "Extra copies of the last frame (a pause on the finished image)."}),
                "pingpong": ("BOOLEAN", {"default": False,
                                         "tooltip": "Play forward, then backward to the start, for a seamless loop "
                                                    "(the way back is read back from a temporary file, not decoded again)."}),
                "white_canvas": ("BOOLEAN", {"default": False,
                                             "tooltip": "Show areas no stroke has touched yet as white paper (needs "
                                                        "the stroke maps). The final frame is always shown as decoded."}),
                "stroke_map_side_by_side": ("BOOLEAN", {"default": False,
                                                        "tooltip": "Put the stroke map (grey = painted so far) to the "
                                                                   "right of each frame (needs the stroke maps)."}),
                "chunk_size": ("INT", {"default": 4, "min": 1, "max": 4096,
                                       "tooltip": "Frames per VAE call: memory grows with it, not with the frame count "
                                                  "(taef2 on a CPU: ~270 MiB per 512x512 frame of the chunk)."}),
            },
            "optional": {
                "stroke_map": ("MASK", {"tooltip": "Paint's stroke_map output for 'frames' (same frame count)."}),
                **more,
                "decode": DECODE_INPUT,
                **{name: (STROKE_MAPS, {"tooltip": f"Paint's or Transition's stroke_maps output for {frames_name}: "
                                                   "the side-by-side map with each stroke in the colour of its latent "
                                                   f"channel (as in Decode Frames), and the white canvas. Used instead "
                                                   f"of {map_name} when both are connected."})
                   for name, (frames_name, map_name) in zip(SEGMENT_MAPS, (("frames", "stroke_map"), *MORE_SEGMENTS))},
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def render(self, frames, vae, filename_prefix, format, fps, quality, hold_first, hold_last, pingpong,
               white_canvas, stroke_map_side_by_side, chunk_size, stroke_map=None, frames_2=None, stroke_map_2=None,
               frames_3=None, stroke_map_3=None, frames_4=None, stroke_map_4=None, decode=None, stroke_maps=None,
               stroke_maps_2=None, stroke_maps_3=None, stroke_maps_4=None, prompt=None, extra_pnginfo=None):
        node = type(self)
        more = {"frames_2": frames_2, "stroke_map_2": stroke_map_2, "frames_3": frames_3, "stroke_map_3": stroke_map_3,
                "frames_4": frames_4, "stroke_map_4": stroke_map_4}
        coloured = dict(zip(SEGMENT_MAPS, (stroke_maps, stroke_maps_2, stroke_maps_3, stroke_maps_4)))
        inputs = [("frames", "stroke_map", "stroke_maps", frames, stroke_map, stroke_maps)]
        inputs += [(f, m, c, more.get(f), more.get(m), coloured[c])
                   for (f, m), c in zip(MORE_SEGMENTS, SEGMENT_MAPS[1:]) if more.get(f) is not None]
        orphan = [(m, f) for f, m in MORE_SEGMENTS if more.get(m) is not None and more.get(f) is None]
        orphan += [(c, f) for (f, _), c in zip(MORE_SEGMENTS, SEGMENT_MAPS[1:])
                   if coloured[c] is not None and more.get(f) is None]
        if orphan:
            raise node_error(node, orphan[0][0], f"is connected but its frames are not; connect {orphan[0][1]} too")
        for name, value in coloured.items():
            if value is not None and not isinstance(value, output.StrokeMaps):
                raise node_error(node, name, "is not a painting's stroke maps; connect Paint's or Transition's "
                                             "stroke_maps output")
        encoding = video.Encoding(format, float(fps), int(quality))
        with reporting(node):
            encoding.check(node.DISPLAY_NAME)
            video.require_encoder(encoding.format, node.DISPLAY_NAME)

        segments = []
        for frames_name, map_name, maps_name, value, mask, maps in inputs:
            latents = latent_samples(value, node, frames_name)
            if (white_canvas or stroke_map_side_by_side) and mask is None and maps is None:
                wanted = "white_canvas" if white_canvas else "stroke_map_side_by_side"
                raise node_error(node, maps_name, f"{wanted} needs them; connect the stroke_maps output that came "
                                                  f"with {frames_name} (or its stroke_map), or turn {wanted} off")
            if not (white_canvas or stroke_map_side_by_side):
                maps = None
            elif maps is None:
                # A MASK carries the coverage only: the map shows it in grey, without per-channel colours.
                maps, maps_name = output.StrokeMaps.from_coverage(mask, latents.shape[1]), map_name
            want = (int(latents.shape[0]), *map(int, latents.shape[2:]))
            if maps is not None and tuple(getattr(maps.coverage, "shape", ())) != want:
                raise node_error(node, maps_name, f"has shape {tuple(getattr(maps.coverage, 'shape', ()))} but "
                                                  f"{frames_name} needs {want} (one map per frame); connect the "
                                                  f"{maps_name.rstrip('_234')} that came with {frames_name}")
            segments.append((frames_name, latents, maps))
        lengths = [int(latents.shape[0]) for _, latents, _ in segments]
        with reporting(node):
            total = video.planned_frames(lengths, int(hold_first), int(hold_last), bool(pingpong), node.DISPLAY_NAME)
        back = total - sum(lengths) - int(hold_first) - int(hold_last)
        report = host.progress(sum(lengths) + back)
        state = {"done": 0}
        grand = sum(lengths) + back

        def segment_progress(offset):
            def progress(done, _of):
                report(offset + done, grand)
            return progress

        def back_progress(frames_read):
            state["done"] += frames_read
            report(sum(lengths) + state["done"], grand)

        chunks = []
        offset = 0
        decoder, options, _ = staged_decoding(vae, decode, node)
        stats = []
        for (frames_name, latents, maps), length in zip(segments, lengths):
            # Each segment starts on a full decode: its own stats, its own verified spans.
            stats.append(None if options is None else incremental.IncrementalStats())
            with reporting(node, frames_name):
                chunks.append(output.decoded_chunks(
                    decoder, latents, int(chunk_size), coverage=maps.coverage if white_canvas else None,
                    white_canvas=bool(white_canvas), stroke_map=maps if stroke_map_side_by_side else False,
                    progress=segment_progress(offset),
                    incremental=options, incremental_stats=stats[-1],
                    where=f"{node.DISPLAY_NAME}: {frames_name}",
                ))
            offset += length

        folder, filename, counter, subfolder = host.save_location(filename_prefix)
        name = f"{filename}_{counter:05}_.{encoding.format}"
        metadata = {}
        if prompt is not None:
            metadata["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        with reporting(node):
            rendered = video.render(
                chunks, os.path.join(folder, name), encoding, hold_first=int(hold_first), hold_last=int(hold_last),
                pingpong=bool(pingpong), progress=back_progress, metadata=metadata, where=node.DISPLAY_NAME,
            )
        report(grand, grand)
        for segment_stats in stats:
            log_incremental(node, segment_stats)
        if encoding.format == "mp4":
            handed_on = host.video_from_file(rendered.path)
        else:
            handed_on = host.blocked_output(
                f"{node.DISPLAY_NAME}: video: the VIDEO output carries mp4 renders only (core video nodes cannot read "
                "animated WEBP); set format to mp4 to pass the file on"
            )
        ui = {"images": [{"filename": name, "subfolder": subfolder, "type": "output"}], "animated": (True,)}
        return {"ui": ui, "result": (handed_on, rendered.frames)}


NODES = (LatentPainterRender,)
