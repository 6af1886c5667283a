"""Writes the example workflows of this folder (ComfyUI UI format, version 0.4).

Not part of the pack (ComfyUI only lists ``*.json`` here); a developer tool. The node layouts,
widget values and notes are written below; the socket and widget order of every node comes from a
ComfyUI's ``/object_info`` form, so the files match what the frontend saves. By default that is
``tests/data/core_nodes.json`` (core nodes, read from a real ComfyUI 0.8.0) plus the pack's own
NODE_CLASS_MAPPINGS; a live host's answer can be given instead:

    python workflows/make_workflows.py
    curl -s http://127.0.0.1:8188/object_info > /tmp/object_info.json
    python workflows/make_workflows.py /tmp/object_info.json

``tests/test_workflows.py`` validates the result without a host; ``tests/host/test_frontend.py``
opens every file in the real frontend, round-trips it and runs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
CORE_VERSION = "0.8.0"
FRONTEND_ONLY = {"Note", "MarkdownNote"}
SD15_URL = ("https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
            "v1-5-pruned-emaonly-fp16.safetensors?download=true")
SD15 = "v1-5-pruned-emaonly-fp16.safetensors"
# A second SD1.5-family checkpoint for the two-checkpoint transition (same VAE and latent format).
SD15_B = "dreamshaper_8.safetensors"

GAP_X, GAP_Y = 40, 36
GROUP_PAD, GROUP_TITLE = 14, 46
NOTE_COLOR, NOTE_BG = "#432", "#653"
GROUP_COLORS = ("#3f789e", "#8A8", "#b58b2a", "#a1309b", "#88A", "#b06634")


class Spec:
    """What the frontend builds for a node type: socket inputs, widgets (incl. control_after_generate), outputs."""

    def __init__(self, node_type: str, info: dict | None):
        self.type = node_type
        if info is None:  # frontend-only note nodes: one text widget
            self.sockets, self.widgets, self.outputs, self.output_node = [], ["text"], [], False
            return
        self.sockets, self.widgets = [], []
        for section in ("required", "optional"):
            specs = info["input"].get(section, {})
            for name in info.get("input_order", {}).get(section, list(specs)):
                kind, options = specs[name][0], (specs[name][1] if len(specs[name]) > 1 else {})
                if isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
                    if options.get("forceInput"):
                        self.sockets.append((name, kind, section == "optional"))
                        continue
                    self.widgets.append(name)
                    if kind == "INT" and options.get("control_after_generate"):
                        self.widgets.append("control_after_generate")
                    if options.get("image_upload"):  # the frontend's upload button saves a value too
                        self.widgets.append("upload")
                else:
                    self.sockets.append((name, kind, section == "optional"))
        self.widget_types = {}
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                self.widget_types[name] = "COMBO" if isinstance(spec[0], list) else spec[0]
                if len(spec) > 1 and spec[1].get("image_upload"):
                    self.widget_types["upload"] = "IMAGEUPLOAD"
        self.outputs = list(zip(info.get("output_name") or info["output"], info["output"]))
        self.output_node = bool(info.get("output_node"))


class Node:
    def __init__(self, wf: "Workflow", spec: Spec, values: dict, size, title=None, color=None, bgcolor=None):
        self.wf, self.spec, self.size, self.title = wf, spec, list(size), title
        self.color, self.bgcolor = color, bgcolor
        self.id = len(wf.nodes) + 1
        self.pos = [0, 0]
        missing = [w for w in spec.widgets if w not in values]
        unknown = [k for k in values if k not in spec.widgets]
        if missing or unknown:
            raise SystemExit(f"{spec.type}: widgets missing {missing}, unknown {unknown}")
        self.values = [values[w] for w in spec.widgets]
        self.in_links: dict[str, int] = {}
        self.widget_links: dict[str, int] = {}
        self.out_links: dict[int, list[int]] = {}
        wf.nodes.append(self)

    def output_index(self, name: str) -> int:
        for i, (out_name, _) in enumerate(self.spec.outputs):
            if out_name == name:
                return i
        raise SystemExit(f"{self.spec.type} has no output {name!r}: {self.spec.outputs}")


class Workflow:
    def __init__(self, stem: str, specs: dict):
        self.stem, self.specs = stem, specs
        self.nodes: list[Node] = []
        self.links: list[list] = []
        self.groups: list[dict] = []
        self.bottom = 0.0  # lower edge of the last column (its group included)

    def add(self, node_type: str, size, title=None, **values) -> Node:
        if node_type not in self.specs:
            self.specs[node_type] = Spec(node_type, None)
        return Node(self, self.specs[node_type], values, size, title)

    def note(self, text: str, size, title=None) -> Node:
        node = self.add("Note", size, title, text=text.strip() + "\n")
        node.color, node.bgcolor = NOTE_COLOR, NOTE_BG
        return node

    def connect(self, src: Node, output: str, dst: Node, input_name: str) -> None:
        slot = src.output_index(output)
        kind = src.spec.outputs[slot][1]
        link_id = len(self.links) + 1
        sockets = [s[0] for s in dst.spec.sockets]
        if input_name in sockets:
            if input_name in dst.in_links:
                raise SystemExit(f"{dst.spec.type}.{input_name} linked twice")
            dst.in_links[input_name] = link_id
        elif input_name in dst.spec.widgets:
            dst.widget_links[input_name] = link_id
        else:
            raise SystemExit(f"{dst.spec.type} has no input {input_name!r}")
        src.out_links.setdefault(slot, []).append(link_id)
        self.links.append([link_id, src.id, slot, dst.id, None, kind, input_name])

    def column(self, x: float, y: float, nodes: list[Node], group: str | None = None, color=None, width=None):
        """Stack ``nodes`` top-down at (x, y); optionally wrap them in a titled group. Returns the right edge."""
        top = y + (GROUP_TITLE if group else 0)
        widest = width or max(n.size[0] for n in nodes)
        cursor = top
        for node in nodes:
            node.pos = [x, cursor]
            cursor += node.size[1] + GAP_Y
        self.bottom = cursor - GAP_Y + (GROUP_PAD + 10 if group else 0)
        if group:
            self.groups.append({
                "id": len(self.groups) + 1, "title": group,
                "bounding": [x - GROUP_PAD, y - GROUP_PAD + 10, widest + 2 * GROUP_PAD, cursor - GAP_Y - y + 2 * GROUP_PAD],
                "color": color or GROUP_COLORS[len(self.groups) % len(GROUP_COLORS)], "font_size": 22, "flags": {},
            })
        return x + widest + GAP_X + (2 * GROUP_PAD if group else 0)

    # ------------------------------------------------------------------ serialisation
    def _order(self) -> dict[int, int]:
        deps = {n.id: set() for n in self.nodes}
        for _, src, _, dst, _, _, _ in self.links:
            deps[dst].add(src)
        order, done = {}, set()
        while len(done) < len(self.nodes):
            ready = sorted(i for i in deps if i not in done and deps[i] <= done)
            if not ready:
                raise SystemExit(f"{self.stem}: the graph has a cycle")
            for i in ready:
                order[i] = len(order)
                done.add(i)
        return order

    def build(self) -> dict:
        order = self._order()
        nodes, slots = [], {}
        for node in self.nodes:
            inputs = []
            for name, kind, optional in node.spec.sockets:
                entry = {"localized_name": name, "name": name, "type": kind if isinstance(kind, str) else "COMBO"}
                if optional:
                    entry["shape"] = 7
                entry["link"] = node.in_links.get(name)
                slots[(node.id, name)] = len(inputs)
                inputs.append(entry)
            # Every widget also has an input slot (frontend >= 1.16 writes them all), linked or not.
            for name in node.spec.widgets:
                if name == "control_after_generate" or node.spec.type in FRONTEND_ONLY:
                    continue
                slots[(node.id, name)] = len(inputs)
                inputs.append({"localized_name": name, "name": name, "type": node.spec.widget_types[name],
                               "widget": {"name": name}, "link": node.widget_links.get(name)})
            outputs = []
            for i, (name, kind) in enumerate(node.spec.outputs):
                links = node.out_links.get(i, [])
                outputs.append({"localized_name": name, "name": name, "type": kind, "links": links,
                                **({"slot_index": i} if links else {})})
            entry = {"id": node.id, "type": node.spec.type, "pos": node.pos, "size": node.size, "flags": {},
                     "order": order[node.id], "mode": 0, "inputs": inputs, "outputs": outputs}
            if node.title:
                entry["title"] = node.title
            if node.spec.type in FRONTEND_ONLY:
                entry["properties"] = {}
            else:
                props = {"Node name for S&R": node.spec.type}
                if not node.spec.type.startswith("LatentPainter"):
                    props.update({"cnr_id": "comfy-core", "ver": CORE_VERSION})
                if node.spec.type == "CheckpointLoaderSimple" and node.values[0] == SD15:
                    props["models"] = [{"name": SD15, "url": SD15_URL, "directory": "checkpoints"}]
                entry["properties"] = props
            entry["widgets_values"] = node.values
            if node.color:
                entry["color"], entry["bgcolor"] = node.color, node.bgcolor
            nodes.append(entry)
        links = [[lid, src, sslot, dst, slots[(dst, name)], kind] for lid, src, sslot, dst, _, kind, name in self.links]
        return {
            "id": _uuid(self.stem),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": links,
            "groups": self.groups,
            "config": {},
            "extra": {"ds": {"scale": 0.75, "offset": [130, 100]}},
            "version": 0.4,
        }


def _uuid(stem: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "latent-painter/workflows/" + stem))


# ---------------------------------------------------------------------- shared blocks
POSITIVE = ("an oil painting of a lighthouse on a rocky cliff at sunset, dramatic clouds, "
            "thick visible brush strokes, impasto")
NEGATIVE = "blurry, low quality, watermark, text, signature"

SIZES = {
    "CheckpointLoaderSimple": (330, 98),
    "CLIPTextEncode": (400, 150),
    "EmptyLatentImage": (330, 106),
    "LatentPainterSampler": (330, 262),
    "LatentPainterSamplerCustom": (330, 126),
    "LatentPainterStrokes": (330, 274),
    "LatentPainterAction": (330, 202),
    "LatentPainterPaint": (330, 190),
    "LatentPainterCanvas": (330, 106),
    "LatentPainterTransition": (330, 390),
    "LatentPainterDecodeFrames": (330, 146),
    "LatentPainterAssembleFrames": (330, 174),
    "LatentPainterRender": (400, 620),
    "LatentPainterSavePlan": (330, 58),
    "LatentPainterLoadPlan": (330, 58),
    "SaveAnimatedWEBP": (400, 460),
    "CreateVideo": (330, 78),
    "SaveVideo": (400, 420),
    "VAEDecode": (330, 46),
    "PreviewImage": (330, 330),
    "SaveImage": (330, 370),
    "RandomNoise": (330, 82),
    "CFGGuider": (330, 98),
    "KSamplerSelect": (330, 58),
    "BasicScheduler": (330, 106),
    "KSampler": (330, 262),
    "LatentPainterCapture": (330, 46),
    "LatentPainterGetPlan": (330, 78),
}


def add(wf: Workflow, node_type: str, title=None, size=None, **values) -> Node:
    return wf.add(node_type, size or SIZES[node_type], title, **values)


def model_block(wf: Workflow, ckpt=SD15, positive=POSITIVE, negative=NEGATIVE, suffix=""):
    ckpt_node = add(wf, "CheckpointLoaderSimple", title=("Load Checkpoint" + suffix) if suffix else None, ckpt_name=ckpt)
    pos = add(wf, "CLIPTextEncode", title="Positive prompt" + suffix, text=positive)
    neg = add(wf, "CLIPTextEncode", title="Negative prompt" + suffix, size=(400, 110), text=negative)
    wf.connect(ckpt_node, "CLIP", pos, "clip")
    wf.connect(ckpt_node, "CLIP", neg, "clip")
    return ckpt_node, pos, neg


def sampler(wf: Workflow, ckpt, pos, neg, latent, seed=42, steps=20, cfg=7.0, title=None, node_type="LatentPainterSampler",
            model_output="MODEL", scheduler="normal"):
    """A KSampler-shaped node (the pack's sampler, or core KSampler on a captured model)."""
    node = add(wf, node_type, title=title, seed=seed, control_after_generate="fixed", steps=steps, cfg=cfg,
               sampler_name="euler", scheduler=scheduler, denoise=1.0)
    wf.connect(ckpt, model_output, node, "model")
    wf.connect(pos, "CONDITIONING", node, "positive")
    wf.connect(neg, "CONDITIONING", node, "negative")
    wf.connect(latent, "LATENT", node, "latent_image")
    return node


def painter(wf: Workflow, preset="stroke24", brush="disk", schedules=0, title=None, previous=None, **over):
    values = dict(preset=preset, brush=brush, channels="", move_cost=0.1, switch_cost=0.0, motivation=0.0,
                  size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=schedules, channels_per_stroke=0)
    values.update(over)
    node = add(wf, "LatentPainterStrokes", title=title, **values)
    if previous is not None:
        wf.connect(previous, "painter", node, "previous")
    return node


def action(wf: Workflow, kind, schedules=0, previous=None, title=None, **over):
    values = dict(kind=kind, frames=0, channels="", motivation=0.0, block=2.0, fraction=1.0, schedules=schedules)
    values.update(over)
    node = add(wf, "LatentPainterAction", title=title, **values)
    if previous is not None:
        wf.connect(previous, "painter", node, "previous")
    return node


def canvas(wf: Workflow, plan_src, vae_src, kind="white", colour="#F4EFE4"):
    node = add(wf, "LatentPainterCanvas", kind=kind, colour=colour)
    wf.connect(vae_src, "VAE", node, "vae")
    wf.connect(plan_src, "plan", node, "plan")
    return node


def paint(wf: Workflow, plan_src, painter_node, vae_src=None, frames=240, pacing="change", cleanup_frames=24,
          canvas_node=None):
    node = add(wf, "LatentPainterPaint", frames=frames, pacing=pacing, cleanup_frames=cleanup_frames, seed=0)
    wf.connect(plan_src, "plan", node, "plan")
    wf.connect(painter_node, "painter", node, "painter")
    if canvas_node is not None:
        wf.connect(canvas_node, "canvas", node, "canvas")
    if vae_src is not None:
        wf.connect(vae_src, "VAE", node, "vae")
    return node


def decode(wf: Workflow, vae_src, frames_src, white=False, side=False):
    node = add(wf, "LatentPainterDecodeFrames", chunk_size=16, white_canvas=white, stroke_map_side_by_side=side,
               decode="auto")
    wf.connect(vae_src, "VAE", node, "vae")
    wf.connect(frames_src, "frames", node, "frames")
    if white or side:
        wf.connect(frames_src, "stroke_maps", node, "stroke_maps")
    return node


def assemble(wf: Workflow, images_src, hold_first=6, hold_last=48, pingpong=False, fps=24.0, duration=0.0):
    node = add(wf, "LatentPainterAssembleFrames", hold_first=hold_first, hold_last=hold_last, pingpong=pingpong,
               fps=fps, duration_seconds=duration)
    wf.connect(images_src, "images", node, "images")
    return node


def save_webp(wf: Workflow, assembled, prefix):
    node = add(wf, "SaveAnimatedWEBP", filename_prefix=prefix, fps=24.0, lossless=False, quality=85, method="default")
    wf.connect(assembled, "images", node, "images")
    wf.connect(assembled, "fps", node, "fps")
    return node


def save_video(wf: Workflow, assembled, prefix):
    create = add(wf, "CreateVideo", fps=24.0)
    wf.connect(assembled, "images", create, "images")
    wf.connect(assembled, "fps", create, "fps")
    save = add(wf, "SaveVideo", filename_prefix=prefix, format="auto", codec="auto")
    wf.connect(create, "VIDEO", save, "video")
    return create, save


def final_preview(wf: Workflow, vae_src, latent_src, output="latent"):
    dec = add(wf, "VAEDecode", title="VAE Decode (final image)")
    wf.connect(latent_src, output, dec, "samples")
    wf.connect(vae_src, "VAE", dec, "vae")
    prev = add(wf, "PreviewImage", title="Final image")
    wf.connect(dec, "IMAGE", prev, "images")
    return dec, prev


# ---------------------------------------------------------------------- note texts
NOTE_MODEL = """
MODEL AND PROMPT
Any SD1.5 checkpoint works (the default name is the standard SD1.5 file); other image model families (SDXL, SD3, Flux...) work the same way with their own loaders.
Latent Painter needs no extra model: it repaints the model's own predictions.
Size: painting cost grows with the latent size; 512x512 is a good start.
"""

NOTE_SAMPLER = """
LATENT PAINTER SAMPLER
A KSampler that also records the plan: the model's predicted final image (x0) at every step, from rough to detailed. The 'latent' output is exactly what KSampler would give.
steps = number of schedules to paint (one per step; 20-30 is plenty).
The seed is 'fixed' so you can change the painter knobs and re-run without sampling again (ComfyUI caches the sampler).
"""

NOTE_PAINTER = """
PAINTER (stroke painter)
preset: strokes per schedule and their sizes. stroke24 = the paper's 24-stroke ramp (radius 1..12 latent px); stroke8/12 faster, stroke48 slower.
brush: disk, square or soft.
channels: limit painting to some latent channels, e.g. '0,2' (empty = all).
move_cost: > 0 makes strokes walk in a path like a hand.
switch_cost: keeps one channel per schedule when large.
motivation: a place is painted only once enough gain has built up (0 = always).
size_scale: 0 = scale radii with the image; early_size > 1 = bigger brushes early (rough to fine).
"""

NOTE_PAINT = """
PAINT
frames: total frames of the painting (first = empty canvas, last = the final image, bit for bit). 0 = one frame per stroke/step.
pacing: 'change' spaces frames by visible change, so the animation neither rushes nor stalls; 'strokes' = one frame per stroke group (the paper's look).
cleanup_frames: a short closing fade that lands exactly on the final image.
seed: only used by the dissolve action.
canvas (optional input): what the painting starts on. A Canvas node 'white' = white paper, the author's look. Not connected: with a VAE connected, the final image's mean colour; without, the all-zero latent (grey-brown in SD, a faint grid in FLUX.2).
vae (optional input): with pacing 'change', decodes a few probe frames so the pace follows what the real decoder shows (evener, ~25% more decoding); also makes the default canvas.
"""

NOTE_CANVAS = """
CANVAS
The painting starts on a flat image encoded by the model's own VAE: 'white' = paper, as the author paints; 'flat' = the final image's mean colour (the calmest start); 'black'; 'colour' = the hex colour below.
The canvas must come from the VAE of the model that made the plan (same latent channels).
"""

NOTE_OUTPUT = """
DECODE AND SAVE
Decode Frames decodes in chunks (chunk_size) so long paintings fit in memory; lower it if you run out of VRAM.
Assemble Frames: hold_first / hold_last pause on the blank canvas and on the finished image; fps or duration_seconds set the speed; pingpong plays back and forth for a loop. Its fps output drives both savers.
Files land in ComfyUI's output folder under latent_painter/ (animated WEBP and MP4).
"""


# ---------------------------------------------------------------------- the workflows
def wf_paint_an_image(specs) -> Workflow:
    wf = Workflow("Paint an image", specs)
    ckpt, pos, neg = model_block(wf)
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    n_model = wf.note(NOTE_MODEL, (330, 200))
    samp = sampler(wf, ckpt, pos, neg, latent)
    dec, prev = final_preview(wf, ckpt, samp)
    n_samp = wf.note(NOTE_SAMPLER, (330, 220))
    pnt = painter(wf)
    cnv = canvas(wf, samp, ckpt)
    pt = paint(wf, samp, pnt, ckpt, canvas_node=cnv)
    n_pnt = wf.note(NOTE_PAINTER, (400, 330))
    n_paint = wf.note(NOTE_PAINT, (400, 360))
    n_canvas = wf.note(NOTE_CANVAS, (400, 170))
    df = decode(wf, ckpt, pt)
    asm = assemble(wf, df)
    n_out = wf.note(NOTE_OUTPUT, (400, 260))
    webp = save_webp(wf, asm, "latent_painter/painting")
    create, vid = save_video(wf, asm, "latent_painter/painting")

    x = wf.column(0, 0, [ckpt, latent, n_model], "1. Model and size")
    x = wf.column(x, 0, [pos, neg], "2. Prompt")
    x = wf.column(x, 0, [samp, dec, prev, n_samp], "3. Sample and record the plan")
    x = wf.column(x, 0, [pnt, n_pnt], "4. Painter")
    x = wf.column(x, 0, [cnv, n_canvas, pt, n_paint], "5. Paint on white paper", width=400)
    x = wf.column(x, 0, [df, asm, n_out], "6. Decode and assemble")
    wf.column(x, 0, [webp, create, vid], "7. Save")
    return wf


NOTE_CUSTOM = """
CUSTOM SAMPLING
Latent Painter Sampler (Custom) takes the same inputs as SamplerCustomAdvanced, so any noise, guider, sampler and scheduler works (and every image model family ComfyUI supports).
RandomNoise: the seed ('fixed', so painter changes re-run without resampling).
CFGGuider: model, prompts and cfg (use BasicGuider for Flux-style models).
KSamplerSelect + BasicScheduler: the sampler and the noise schedule; every sigma step becomes one schedule of the plan.
"""


def wf_custom_sampling(specs) -> Workflow:
    wf = Workflow("Paint with custom sampling", specs)
    ckpt, pos, neg = model_block(wf)
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    noise = add(wf, "RandomNoise", noise_seed=42, control_after_generate="fixed")
    guider = add(wf, "CFGGuider", cfg=7.0)
    wf.connect(ckpt, "MODEL", guider, "model")
    wf.connect(pos, "CONDITIONING", guider, "positive")
    wf.connect(neg, "CONDITIONING", guider, "negative")
    select = add(wf, "KSamplerSelect", sampler_name="dpmpp_2m")
    sched = add(wf, "BasicScheduler", scheduler="karras", steps=20, denoise=1.0)
    wf.connect(ckpt, "MODEL", sched, "model")
    samp = add(wf, "LatentPainterSamplerCustom")
    wf.connect(noise, "NOISE", samp, "noise")
    wf.connect(guider, "GUIDER", samp, "guider")
    wf.connect(select, "SAMPLER", samp, "sampler")
    wf.connect(sched, "SIGMAS", samp, "sigmas")
    wf.connect(latent, "LATENT", samp, "latent_image")
    n_custom = wf.note(NOTE_CUSTOM, (330, 300))
    dec, prev = final_preview(wf, ckpt, samp)
    pnt = painter(wf, preset="stroke24", brush="soft")
    cnv = canvas(wf, samp, ckpt)
    pt = paint(wf, samp, pnt, ckpt, canvas_node=cnv)
    n_paint = wf.note(NOTE_PAINT, (400, 360))
    df = decode(wf, ckpt, pt)
    asm = assemble(wf, df)
    webp = save_webp(wf, asm, "latent_painter/custom")
    n_out = wf.note(NOTE_OUTPUT, (400, 260))

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [noise, guider, select, sched, n_custom], "2. Custom sampling parts")
    x = wf.column(x, 0, [samp, dec, prev], "3. Sample and record the plan")
    x = wf.column(x, 0, [pnt, cnv, pt, n_paint], "4. Paint on white paper", width=400)
    x = wf.column(x, 0, [df, asm, n_out], "5. Decode and assemble", width=400)
    wf.column(x, 0, [webp], "6. Save")
    return wf


NOTE_WHITE = """
WHITE CANVAS AND STROKE MAP
A zero latent decodes to flat grey-brown (or a grid), not to white paper. The Canvas node 'white' encodes white paper with the model's VAE, and Paint starts from it: strokes land on paper with the decoder's own soft edges.
stroke_map_side_by_side = the stroke map is drawn to the right of each frame (twice as wide): grey = painted so far, this frame's strokes in the colour of their latent channel. It needs Paint's stroke_maps link (the stroke_map MASK gives a grey map only).
white_canvas (Decode Frames) = areas no stroke has touched are shown as exact paper white, with soft round edges: on the white Canvas it keeps the paper clean; on other canvases it is the pixel-space way to paint on paper. The last frame is always the real decoded image.
"""


def wf_white_canvas(specs) -> Workflow:
    wf = Workflow("White canvas and stroke map", specs)
    ckpt, pos, neg = model_block(wf, positive="a watercolor painting of a red fox in a snowy forest, loose brush strokes, "
                                              "white paper")
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp = sampler(wf, ckpt, pos, neg, latent)
    pnt = painter(wf, preset="stroke24", brush="soft")
    cnv = canvas(wf, samp, ckpt)
    pt = paint(wf, samp, pnt, ckpt, frames=240, pacing="change", canvas_node=cnv)
    df = decode(wf, ckpt, pt, white=True, side=True)
    n_white = wf.note(NOTE_WHITE, (400, 400))
    asm = assemble(wf, df)
    webp = save_webp(wf, asm, "latent_painter/white_canvas")
    n_paint = wf.note(NOTE_PAINT, (330, 340))
    n_pnt = wf.note(NOTE_PAINTER, (330, 330))

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [samp, n_pnt], "2. Sample and record the plan")
    x = wf.column(x, 0, [pnt, cnv, pt, n_paint], "3. Paint on white paper")
    x = wf.column(x, 0, [df, n_white, asm], "4. White canvas and stroke map", width=400)
    wf.column(x, 0, [webp], "5. Save")
    return wf


NOTE_CHAIN = """
REVEAL ACTIONS, CHAINED
Each Painter / Painter Action node appends one stage to the chain (the 'previous' input). Stages paint consecutive schedules of the plan, in chain order; 'schedules' says how many (0 = an equal share of what is left).
Here (20 steps): 6 schedules of strokes, then glow (a disk grows from the place of most change), flip (small blocks flip in zig-zag chains), dissolve (random cells) and a final fade.
frames = frames per schedule (0 = the paper's count: fade 8, glow 7, flip 16, dissolve 16).
block: flip block / dissolve cell size; fraction: dissolve share revealed per schedule.
Paint: frames = 0 makes one frame per painting step (about 260 here); pacing 'change' spreads them by visible change, 'strokes' shows every action step alike (the paper's look, slower where little changes).
"""


def wf_reveal_chain(specs) -> Workflow:
    wf = Workflow("Reveal actions chain", specs)
    ckpt, pos, neg = model_block(wf, positive="a stained glass window of a peacock, vivid colors, intricate detail")
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp = sampler(wf, ckpt, pos, neg, latent)
    s1 = painter(wf, preset="stroke12", schedules=6, title="Painter (strokes, 6 schedules)")
    s2 = action(wf, "glow", schedules=4, previous=s1, title="Painter Action (glow, 4 schedules)")
    s3 = action(wf, "flip", schedules=4, previous=s2, title="Painter Action (flip, 4 schedules)")
    s4 = action(wf, "dissolve", schedules=3, previous=s3, block=4.0, fraction=0.5,
                title="Painter Action (dissolve, 3 schedules)")
    s5 = action(wf, "fade", schedules=0, previous=s4, title="Painter Action (fade, the rest)")
    n_chain = wf.note(NOTE_CHAIN, (330, 420))
    pt = paint(wf, samp, s5, ckpt, frames=0, pacing="change")
    df = decode(wf, ckpt, pt)
    asm = assemble(wf, df)
    webp = save_webp(wf, asm, "latent_painter/reveal_chain")
    n_paint = wf.note(NOTE_PAINT, (330, 340))

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [samp, n_chain], "2. Sample and record the plan")
    x = wf.column(x, 0, [s1, s2, s3], "3. The chain (part 1)")
    x = wf.column(x, 0, [s4, s5], "3. The chain (part 2)")
    x = wf.column(x, 0, [pt, n_paint, df, asm], "4. Paint, decode, assemble")
    wf.column(x, 0, [webp], "5. Save")
    return wf


NOTE_TRANSITION = """
TRANSITION
The canvas starts on image A, unpaints it back through A's own predictions and paints B forward: no ghosting, no cross-fade.
depth: how far back to go (0 = straight from A to B; 1 = back to A's roughest prediction). Deeper = longer and blurrier in the middle; shallower keeps shared detail.
guidance: weight of latents interpolated between A and B; use 0.5-1 when A and B share a background (an edit of one scene), so in-between frames stay crisp. guidance_steps: schedules when depth is 0.
interpolation: lerp or slerp for the guidance.
pingpong: come back to A (a loop). resize: allow plans of different sizes.
frames / pacing / cleanup_frames / seed / vae: as in Paint, per leg. plan_c / plan_d: continue to more images.
"""

NOTE_TWO_CKPT = """
TWO CHECKPOINTS
A and B may come from different checkpoints as long as they share a latent space (same VAE family, e.g. two SD1.5 models). Mixing families (SD1.5 with SDXL, or Flux) is refused with an error that names both formats.
Use the same image size for both (or turn on resize in Transition).
Decode with the VAE of either model (they are the same family).
"""


def wf_transition(specs) -> Workflow:
    wf = Workflow("Transition between two checkpoints", specs)
    ckpt_a, pos_a, neg_a = model_block(wf, positive="an oil painting of a lighthouse on a rocky cliff at sunset",
                                       suffix=" (A)")
    ckpt_b = add(wf, "CheckpointLoaderSimple", title="Load Checkpoint (B)", ckpt_name=SD15_B)
    pos_b = add(wf, "CLIPTextEncode", title="Positive prompt (B)",
                text="an oil painting of a lighthouse on a rocky cliff in a winter storm at night")
    neg_b = add(wf, "CLIPTextEncode", title="Negative prompt (B)", size=(400, 110), text=NEGATIVE)
    wf.connect(ckpt_b, "CLIP", pos_b, "clip")
    wf.connect(ckpt_b, "CLIP", neg_b, "clip")
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp_a = sampler(wf, ckpt_a, pos_a, neg_a, latent, title="Latent Painter Sampler (A)")
    samp_b = sampler(wf, ckpt_b, pos_b, neg_b, latent, title="Latent Painter Sampler (B)")
    pnt = painter(wf, preset="stroke24")
    tr = add(wf, "LatentPainterTransition", depth=0.5, guidance=0.0, guidance_steps=12, interpolation="lerp",
             pingpong=False, resize=False, frames=180, pacing="change", cleanup_frames=24, seed=0)
    wf.connect(samp_a, "plan", tr, "plan_a")
    wf.connect(samp_b, "plan", tr, "plan_b")
    wf.connect(pnt, "painter", tr, "painter")
    wf.connect(ckpt_a, "VAE", tr, "vae")
    n_tr = wf.note(NOTE_TRANSITION, (400, 400))
    n_two = wf.note(NOTE_TWO_CKPT, (400, 200))
    df = add(wf, "LatentPainterDecodeFrames", chunk_size=16, white_canvas=False, stroke_map_side_by_side=False,
             decode="auto")
    wf.connect(ckpt_a, "VAE", df, "vae")
    wf.connect(tr, "frames", df, "frames")
    asm = assemble(wf, df, hold_first=24, hold_last=24)
    webp = save_webp(wf, asm, "latent_painter/transition")
    create, vid = save_video(wf, asm, "latent_painter/transition")

    x = wf.column(0, 0, [ckpt_a, pos_a, neg_a], "A: first checkpoint and prompt", width=400)
    wf.column(0, wf.bottom + 40, [ckpt_b, pos_b, neg_b], "B: second checkpoint and prompt", width=400)
    x2 = wf.column(x, 0, [latent, samp_a], "Sample A (records plan A)")
    wf.column(x, wf.bottom + 40, [samp_b, n_two], "Sample B (records plan B)")
    x = wf.column(x2, 0, [pnt, tr], "Painter and transition")
    x = wf.column(x, 0, [n_tr, df, asm], "Decode and assemble", width=400)
    wf.column(x, 0, [webp, create, vid], "Save")
    return wf


NOTE_PINGPONG = """
PING-PONG LOOP
One model, two prompts: the Transition paints A -> B -> A (pingpong on), so the animation ends where it starts and loops without a jump.
Each leg unpaints the current image back to 'depth' and paints the other one forward; frames = frames per leg.
Assemble Frames adds short holds on A; hold_last is kept small because the last frame is A again and the loop restarts on it.
For a loop of a single painting (paint, then unpaint), use Paint + Assemble Frames with pingpong on instead.
"""


def wf_pingpong(specs) -> Workflow:
    wf = Workflow("Ping-pong loop", specs)
    ckpt, pos_a, neg = model_block(wf, positive="a cozy cabin in a green summer meadow, oil painting", suffix=" (A)")
    neg.title = "Negative prompt (A and B)"
    pos_b = add(wf, "CLIPTextEncode", title="Positive prompt (B)",
                text="a cozy cabin in a snowy winter meadow at dusk, oil painting")
    wf.connect(ckpt, "CLIP", pos_b, "clip")
    ckpt.title = None
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp_a = sampler(wf, ckpt, pos_a, neg, latent, seed=7, title="Latent Painter Sampler (A)")
    samp_b = sampler(wf, ckpt, pos_b, neg, latent, seed=7, title="Latent Painter Sampler (B)")
    pnt = painter(wf, preset="stroke12", brush="soft")
    tr = add(wf, "LatentPainterTransition", depth=0.4, guidance=0.5, guidance_steps=12, interpolation="slerp",
             pingpong=True, resize=False, frames=120, pacing="change", cleanup_frames=12, seed=0)
    wf.connect(samp_a, "plan", tr, "plan_a")
    wf.connect(samp_b, "plan", tr, "plan_b")
    wf.connect(pnt, "painter", tr, "painter")
    wf.connect(ckpt, "VAE", tr, "vae")
    n_pp = wf.note(NOTE_PINGPONG, (400, 260))
    n_tr = wf.note(NOTE_TRANSITION, (400, 400))
    df = add(wf, "LatentPainterDecodeFrames", chunk_size=16, white_canvas=False, stroke_map_side_by_side=False,
             decode="auto")
    wf.connect(ckpt, "VAE", df, "vae")
    wf.connect(tr, "frames", df, "frames")
    asm = assemble(wf, df, hold_first=12, hold_last=0)
    webp = save_webp(wf, asm, "latent_painter/pingpong")

    x = wf.column(0, 0, [ckpt, latent, pos_a, pos_b, neg], "1. Model, size and the two prompts", width=400)
    x = wf.column(x, 0, [samp_a, samp_b], "2. Sample A and B (same seed)")
    x = wf.column(x, 0, [pnt, tr], "3. Painter and ping-pong transition")
    x = wf.column(x, 0, [n_pp, n_tr], "Notes", width=400)
    x = wf.column(x, 0, [df, asm], "4. Decode and assemble")
    wf.column(x, 0, [webp], "5. Save the loop")
    return wf


NOTE_SAVE = """
SAVE A PLAN
Sampling is the slow part; a plan file keeps every step's prediction so you can paint it again later (other painters, frame counts, transitions) without the model.
Save Plan writes a .safetensors file (tensors + JSON metadata, no pickle) to ComfyUI's output folder: latent_painter/plan_00001_.safetensors, then _00002_ and so on.
Open the 'Load a plan and paint it' workflow afterwards; refresh the page so Load Plan lists the new file (marked [output]). Copy it to the input folder to share it.
"""


def wf_save_plan(specs) -> Workflow:
    wf = Workflow("Save a plan", specs)
    ckpt, pos, neg = model_block(wf)
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp = sampler(wf, ckpt, pos, neg, latent)
    save = add(wf, "LatentPainterSavePlan", filename_prefix="latent_painter/plan")
    wf.connect(samp, "plan", save, "plan")
    dec = add(wf, "VAEDecode", title="VAE Decode (final image)")
    wf.connect(samp, "latent", dec, "samples")
    wf.connect(ckpt, "VAE", dec, "vae")
    img = add(wf, "SaveImage", filename_prefix="latent_painter/plan_image")
    wf.connect(dec, "IMAGE", img, "images")
    n_save = wf.note(NOTE_SAVE, (400, 260))
    n_samp = wf.note(NOTE_SAMPLER, (330, 220))

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [samp, n_samp], "2. Sample and record the plan")
    x = wf.column(x, 0, [save, n_save], "3. Save the plan", width=400)
    wf.column(x, 0, [dec, img], "The image the plan paints")
    return wf


NOTE_LOAD = """
LOAD A PLAN AND PAINT IT
Load Plan lists plan files from ComfyUI's input folder and, marked [output], those written by Save Plan (refresh the page after saving). Run 'Save a plan' first: this workflow expects latent_painter/plan_00001_.safetensors [output].
No sampling happens here: only painting and decoding.
The VAE must be the one of the model family that made the plan (SD1.5 here). The checkpoint loader is only used for its VAE; a VAE Loader works as well.
"""


def wf_load_plan(specs) -> Workflow:
    wf = Workflow("Load a plan and paint it", specs)
    load = add(wf, "LatentPainterLoadPlan", plan="latent_painter/plan_00001_.safetensors [output]")
    ckpt = add(wf, "CheckpointLoaderSimple", title="Load Checkpoint (for its VAE)", ckpt_name=SD15)
    n_load = wf.note(NOTE_LOAD, (400, 250))
    pnt = painter(wf, preset="stroke24", brush="square", move_cost=0.5)
    cnv = canvas(wf, load, ckpt)
    pt = paint(wf, load, pnt, ckpt, canvas_node=cnv)
    n_paint = wf.note(NOTE_PAINT, (330, 340))
    df = decode(wf, ckpt, pt)
    asm = assemble(wf, df)
    webp = save_webp(wf, asm, "latent_painter/from_plan")
    n_pnt = wf.note(NOTE_PAINTER, (330, 330))

    x = wf.column(0, 0, [load, ckpt, n_load], "1. The plan and its VAE", width=400)
    x = wf.column(x, 0, [pnt, n_pnt], "2. Painter")
    x = wf.column(x, 0, [cnv, pt, n_paint], "3. Paint on white paper")
    x = wf.column(x, 0, [df, asm], "4. Decode and assemble")
    wf.column(x, 0, [webp], "5. Save")
    return wf


NOTE_CAPTURE = """
CAPTURE + GET PLAN (works with the sampler you already use)
This is the core text-to-image graph, unchanged, plus two nodes:
Capture sits between Load Checkpoint and the sampler: the model it returns records every step's prediction whenever any sampler samples with it (KSampler, KSampler Advanced, SamplerCustom, SamplerCustomAdvanced, other packs' samplers). The image is bit for bit what it is without Capture; previews and the progress bar keep working.
Get Plan takes the captured model and the sampler's output latent (so it runs after the sampler and knows which run you mean); batch_index picks an image of a batch.
Two passes that continue one another (KSampler Advanced base then refiner, or a second pass on the first one's output at the same size) give one plan. A hires-fix pass at another size gives its own plan: put a Get Plan after each sampler and paint each.
"""


def wf_capture(specs) -> Workflow:
    wf = Workflow("Capture any sampler and paint", specs)
    ckpt, pos, neg = model_block(wf)
    capture = add(wf, "LatentPainterCapture")
    wf.connect(ckpt, "MODEL", capture, "model")
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    n_capture = wf.note(NOTE_CAPTURE, (400, 420))
    ks = sampler(wf, capture, pos, neg, latent, node_type="KSampler", model_output="model")
    dec = add(wf, "VAEDecode")
    wf.connect(ks, "LATENT", dec, "samples")
    wf.connect(ckpt, "VAE", dec, "vae")
    img = add(wf, "SaveImage", filename_prefix="latent_painter/captured")
    wf.connect(dec, "IMAGE", img, "images")
    get = add(wf, "LatentPainterGetPlan", batch_index=0)
    wf.connect(capture, "model", get, "model")
    wf.connect(ks, "LATENT", get, "latent")
    pnt = painter(wf)
    cnv = canvas(wf, get, ckpt)
    pt = paint(wf, get, pnt, ckpt, canvas_node=cnv)
    n_paint = wf.note(NOTE_PAINT, (400, 360))
    df = decode(wf, ckpt, pt)
    asm = assemble(wf, df)
    webp = save_webp(wf, asm, "latent_painter/captured")
    n_out = wf.note(NOTE_OUTPUT, (400, 260))

    x = wf.column(0, 0, [ckpt, capture, latent, n_capture], "1. Model, captured", width=400)
    x = wf.column(x, 0, [pos, neg], "2. Prompt")
    x = wf.column(x, 0, [ks, dec, img], "3. Your sampler, as it was")
    x = wf.column(x, 0, [get, pnt], "4. The plan and the painter")
    x = wf.column(x, 0, [cnv, pt, n_paint], "5. Paint on white paper", width=400)
    x = wf.column(x, 0, [df, asm, n_out], "6. Decode and assemble", width=400)
    wf.column(x, 0, [webp], "7. Save")
    return wf


NOTE_RENDER = """
RENDER (long paintings straight to a file)
Render decodes the painted frames chunk by chunk and encodes each chunk into the file at once, so memory stays at one chunk whatever the frame count (Decode Frames + Assemble Frames hold every frame as images: 1,000 frames at 512x512 are 3 GiB).
format: mp4 (H.264, small, for players and core video nodes: its 'video' output goes to Save Video, Get Video Components...) or webp (animated, plays in any browser).
quality: webp lossy quality (100 = lossless); mp4 CRF = 51 - 0.4 x quality (80 -> 19).
hold_first / hold_last, pingpong, white_canvas and stroke_map_side_by_side work as in Decode Frames + Assemble Frames; connect Paint's stroke_maps for a map with each stroke in the colour of its channel. frames_2..frames_4 play after 'frames' (e.g. a Transition from the final image) without joining decoded images.
The file appears in the output folder only when complete: Cancel leaves none. The node plays it when done.
Here: 1,000 frames (20 s at 50 fps, as in the author's demos) to MP4, and the same painting on white paper with its stroke map to WEBP.
"""


def render(wf: Workflow, vae_src, frames_src, prefix, format="mp4", fps=50.0, hold_last=50, white=False, side=False):
    node = add(wf, "LatentPainterRender", filename_prefix=prefix, format=format, fps=fps, quality=80, hold_first=0,
               hold_last=hold_last, pingpong=False, white_canvas=white, stroke_map_side_by_side=side, chunk_size=4,
               decode="auto")
    wf.connect(frames_src, "frames", node, "frames")
    wf.connect(vae_src, "VAE", node, "vae")
    if white or side:
        # The coloured maps (strokes in the colour of their channel), as Decode Frames shows them.
        wf.connect(frames_src, "stroke_maps", node, "stroke_maps")
    return node


def wf_render(specs) -> Workflow:
    wf = Workflow("Render a long painting to video", specs)
    ckpt, pos, neg = model_block(wf)
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp = sampler(wf, ckpt, pos, neg, latent)
    pnt = painter(wf)
    pt = paint(wf, samp, pnt, ckpt, frames=1000)
    n_paint = wf.note(NOTE_PAINT, (400, 300))
    mp4 = render(wf, ckpt, pt, "latent_painter/render")
    webp = render(wf, ckpt, pt, "latent_painter/render_white", format="webp", white=True, side=True)
    n_render = wf.note(NOTE_RENDER, (400, 400))

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [samp, pnt], "2. Sample and painter")
    x = wf.column(x, 0, [pt, n_paint], "3. Paint 1,000 frames", width=400)
    x = wf.column(x, 0, [mp4, n_render], "4. Render to MP4", width=400)
    wf.column(x, 0, [webp], "5. Render on white paper to WEBP", width=400)
    return wf


# ---------------------------------------------------------------------- a picture you have (issue 28)
PICTURE = "example.png"  # the picture every ComfyUI install has in its input folder

NOTE_PICTURE = """
PAINT A PICTURE YOU HAVE
Load Image: any picture (a photo, an artwork, an old generation). Pick yours or upload it.
Plan From Image makes the plan with no model and no sampling: the picture blurred back to colour blobs and sharpened again step by step, as a real run's predictions sharpen, each step encoded by the VAE. The painting ends exactly on the encoded picture.
steps = schedules to paint (30 is plenty); roughness = how rough the start is (1 = colour blobs, 0.5 = a soft blur).
The VAE: any (a checkpoint's, Load VAE's, TAESD, or 'pixel_space'); use the one you decode with. Only the VAE of the checkpoint is used here, not its model.
For the model's own way of building the picture, see the template 'Paint a picture with your model'.
"""

NOTE_INVERT = """
YOUR MODEL, RUN BACKWARD AND FORWARD
1. VAE Encode the picture.
2. SamplerCustom with FlipSigmas runs the sampler backward (no noise added, cfg 1): the picture's latent becomes the noise that leads to it.
3. SamplerCustom on the captured model samples it back: Get Plan records the model's predictions, rough to fine.
The model lands near your picture but not on it (its own reconstruction). Get Plan's end_latent (the encoded picture) makes the painting end exactly on your picture: the difference is faded in along the plan, broad first and detail last, so the last frames do not jump.
A prompt describing the picture helps the model; cfg 1 keeps the run invertible.
"""


def picture_paint_and_render(wf: Workflow, plan_src, vae_src, prefix: str):
    """Painter -> Canvas white -> Paint -> Render (webp, white paper, the coloured stroke map beside)."""
    pnt = painter(wf)
    cnv = canvas(wf, plan_src, vae_src)
    pt = paint(wf, plan_src, pnt, vae_src, canvas_node=cnv)
    node = add(wf, "LatentPainterRender", size=(400, 620), filename_prefix=prefix, format="webp", fps=24.0,
               quality=80, hold_first=6, hold_last=48, pingpong=False, white_canvas=True, stroke_map_side_by_side=True,
               chunk_size=4, decode="auto")
    wf.connect(pt, "frames", node, "frames")
    wf.connect(vae_src, "VAE", node, "vae")
    wf.connect(pt, "stroke_maps", node, "stroke_maps")
    return pnt, cnv, pt, node


def load_picture(wf: Workflow):
    return add(wf, "LoadImage", size=(330, 340), image=PICTURE, upload="image")


def wf_paint_a_picture(specs) -> Workflow:
    wf = Workflow("Paint a picture you have", specs)
    ckpt = add(wf, "CheckpointLoaderSimple", title="Load Checkpoint (its VAE only)", ckpt_name=SD15)
    image = load_picture(wf)
    n_picture = wf.note(NOTE_PICTURE, (400, 380))
    plan = add(wf, "LatentPainterPlanFromImage", size=(330, 130), steps=30, roughness=1.0)
    wf.connect(image, "IMAGE", plan, "image")
    wf.connect(ckpt, "VAE", plan, "vae")
    pnt, cnv, pt, rnd = picture_paint_and_render(wf, plan, ckpt, "latent_painter/picture")
    n_paint = wf.note(NOTE_PAINT, (400, 300))

    x = wf.column(0, 0, [ckpt, image], "1. Your picture and a VAE", width=400)
    x = wf.column(x, 0, [plan, n_picture], "2. Plan From Image (no model)", width=400)
    x = wf.column(x, 0, [pnt, cnv], "3. Painter and white paper")
    x = wf.column(x, 0, [pt, n_paint], "4. Paint", width=400)
    wf.column(x, 0, [rnd], "5. Render with the stroke map", width=400)
    return wf


def wf_paint_a_picture_with_your_model(specs) -> Workflow:
    wf = Workflow("Paint a picture with your model", specs)
    ckpt, pos, neg = model_block(wf, positive="a photo", negative="")
    image = load_picture(wf)
    enc = add(wf, "VAEEncode", size=(330, 46))
    wf.connect(image, "IMAGE", enc, "pixels")
    wf.connect(ckpt, "VAE", enc, "vae")
    select = add(wf, "KSamplerSelect", sampler_name="euler")
    sched = add(wf, "BasicScheduler", scheduler="normal", steps=20, denoise=1.0)
    wf.connect(ckpt, "MODEL", sched, "model")
    flip = add(wf, "FlipSigmas", size=(330, 26))
    wf.connect(sched, "SIGMAS", flip, "sigmas")

    def custom(model_src, model_output, sigmas_src, latent_src, latent_output, title):
        node = add(wf, "SamplerCustom", size=(330, 262), title=title, add_noise=False, noise_seed=0,
                   control_after_generate="fixed", cfg=1.0)
        wf.connect(model_src, model_output, node, "model")
        wf.connect(pos, "CONDITIONING", node, "positive")
        wf.connect(neg, "CONDITIONING", node, "negative")
        wf.connect(select, "SAMPLER", node, "sampler")
        wf.connect(sigmas_src, "SIGMAS", node, "sigmas")
        wf.connect(latent_src, latent_output, node, "latent_image")
        return node

    invert = custom(ckpt, "MODEL", flip, enc, "LATENT", "SamplerCustom (backward: picture to noise)")
    capture = add(wf, "LatentPainterCapture")
    wf.connect(ckpt, "MODEL", capture, "model")
    forward = custom(capture, "model", sched, invert, "output", "SamplerCustom (forward, captured)")
    get = add(wf, "LatentPainterGetPlan", size=(330, 100), batch_index=0)
    wf.connect(capture, "model", get, "model")
    wf.connect(forward, "output", get, "latent")
    wf.connect(enc, "LATENT", get, "end_latent")
    n_invert = wf.note(NOTE_INVERT, (400, 420))
    pnt, cnv, pt, rnd = picture_paint_and_render(wf, get, ckpt, "latent_painter/picture_model")

    x = wf.column(0, 0, [ckpt, pos, neg], "1. Model and a prompt for the picture", width=400)
    x = wf.column(x, 0, [image, enc], "2. Your picture, encoded")
    x = wf.column(x, 0, [select, sched, flip, invert], "3. Backward: picture to noise")
    x = wf.column(x, 0, [capture, forward, get, n_invert], "4. Forward, captured; end on the picture", width=400)
    x = wf.column(x, 0, [pnt, cnv, pt], "5. Paint on white paper")
    wf.column(x, 0, [rnd], "6. Render with the stroke map", width=400)
    return wf


# ---------------------------------------------------------------------- diffusion-model loaders (issue 27)
# Default files: Z-Image Turbo (a 4-D, 16-channel latent); the note names the
# files for Flux.1 and Qwen-Image.
ZIMAGE_UNET, ZIMAGE_TE, FLUX_VAE = "z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"
SIZES.update({"UNETLoader": (330, 82), "CLIPLoader": (330, 106), "VAELoader": (330, 58),
              "EmptySD3LatentImage": (330, 106)})

NOTE_DIFFUSION_FILES = """
DIFFUSION MODEL, TEXT ENCODER, VAE (models that do not come as one checkpoint)
Pick the files of your model in the three loaders (ComfyUI folders in brackets); the rest of the graph stays as it is.
Z-Image Turbo (as saved): Load Diffusion Model z_image_turbo_bf16.safetensors [diffusion_models]; Load CLIP qwen_3_4b.safetensors, type lumina2 [text_encoders]; Load VAE ae.safetensors [vae]. KSampler: 8 steps, cfg 1.
Flux.1 dev / schnell: Load Diffusion Model flux1-dev.safetensors (or flux1-schnell); replace Load CLIP by DualCLIPLoader with clip_l.safetensors + t5xxl_fp16.safetensors (or t5xxl_fp8_e4m3fn), type flux; Load VAE ae.safetensors. KSampler cfg 1 (dev: 20 steps and a FluxGuidance 3.5 on the positive prompt; schnell: 4 steps).
Qwen-Image: Load Diffusion Model qwen_image_fp8_e4m3fn.safetensors; Load CLIP qwen_2.5_vl_7b_fp8_scaled.safetensors, type qwen_image; Load VAE qwen_image_vae.safetensors. KSampler 20 steps, cfg 2.5. Its latents are [B,16,1,H,W] (a time axis of one): the pack paints them as images, and Paint's frames decode with the same Load VAE.
SD3.5 and HiDream load the same way (their text encoders through TripleCLIPLoader / QuadrupleCLIPLoader).
Empty latent: EmptySD3LatentImage is the 16-channel empty latent these families use (sizes in steps of 16).
"""

NOTE_DIFFUSION_CAPTURE = """
WHERE CAPTURE AND GET PLAN GO
Capture sits between Load Diffusion Model and the sampler (after any model patch such as ModelSamplingAuraFlow or a LoRA, right before the sampler), so it records what the sampler really ran.
Get Plan takes the captured model and the sampler's output latent.
The Canvas, Paint and Render take Load VAE's VAE: the model's own VAE, the latent space the plan lives in.
"""


def wf_diffusion_model(specs) -> Workflow:
    wf = Workflow("Paint with a diffusion model, text encoder and VAE", specs)
    unet = add(wf, "UNETLoader", unet_name=ZIMAGE_UNET, weight_dtype="default")
    clip = add(wf, "CLIPLoader", clip_name=ZIMAGE_TE, type="lumina2", device="default")
    vae = add(wf, "VAELoader", title="Load VAE", vae_name=FLUX_VAE)
    pos = add(wf, "CLIPTextEncode", title="Positive prompt", text=POSITIVE)
    neg = add(wf, "CLIPTextEncode", title="Negative prompt", size=(400, 110), text=NEGATIVE)
    wf.connect(clip, "CLIP", pos, "clip")
    wf.connect(clip, "CLIP", neg, "clip")
    n_files = wf.note(NOTE_DIFFUSION_FILES, (400, 520))
    capture = add(wf, "LatentPainterCapture")
    wf.connect(unet, "MODEL", capture, "model")
    latent = add(wf, "EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    ks = sampler(wf, capture, pos, neg, latent, steps=8, cfg=1.0, node_type="KSampler", model_output="model",
                 scheduler="simple")
    n_capture = wf.note(NOTE_DIFFUSION_CAPTURE, (330, 260))
    dec, prev = final_preview(wf, vae, ks, output="LATENT")
    get = add(wf, "LatentPainterGetPlan", batch_index=0)
    wf.connect(capture, "model", get, "model")
    wf.connect(ks, "LATENT", get, "latent")
    pnt = painter(wf)
    cnv = canvas(wf, get, vae)
    pt = paint(wf, get, pnt, vae, frames=240, canvas_node=cnv)
    out = render(wf, vae, pt, "latent_painter/diffusion_model", format="webp", fps=24.0, hold_last=48)
    n_render = wf.note(NOTE_RENDER_AUTO, (400, 200))

    x = wf.column(0, 0, [unet, clip, vae, n_files], "1. Diffusion model, text encoder, VAE", width=400)
    x = wf.column(x, 0, [pos, neg], "2. Prompt")
    x = wf.column(x, 0, [capture, latent, ks, n_capture], "3. Captured model and your sampler")
    x = wf.column(x, 0, [dec, prev], "The final image")
    x = wf.column(x, 0, [get, pnt, cnv, pt], "4. Plan, painter, canvas, paint")
    wf.column(x, 0, [out, n_render], "5. Render", width=400)
    return wf


NOTE_RENDER_AUTO = """
DECODE: AUTO
Render decodes with 'auto': only what changed, where the pack promises every frame within its PSNR bound for the connected VAE (the TAESD family); every frame whole otherwise (the full VAEs of these models). The node's text says which way it decoded and how much faster it was.
For a quick preview of a long painting with a full VAE, see the template 'Render fast with TAESD'.
"""


# ---------------------------------------------------------------------- fast render with TAESD (issue 27)
NOTE_FAST = """
RENDER FAST WITH TAESD
The frames are decoded by TAESD, the tiny decoder of your model's latent space, through the core Load VAE node: taesd (SD1.5/SD2), taesdxl (SDXL), taesd3 (SD3/SD3.5), taef1 (Flux.1). Load VAE lists them once both files are in models/vae_approx (e.g. taesd_encoder.safetensors and taesd_decoder.safetensors; from github.com/madebyollin/taesd).
With TAESD, decode 'auto' decodes only what changed in each frame (every frame within the PSNR bound of its own full decode, the last frame exact), several times faster than decoding every frame with the checkpoint's full VAE, which 'auto' always decodes whole.
What it costs in look: every frame, the last one too, is TAESD's picture, a small distilled copy of the full decoder: fine detail and exact colours are the full VAE's job (the final image here is decoded by the checkpoint's VAE, so you can compare). 'auto' itself costs nothing visible: each frame stays within the PSNR bound of TAESD's own full decode (README 'Render fast with TAESD'). For the final render, connect the checkpoint's VAE to Render.
The canvas still comes from the checkpoint's full VAE: both decoders share the model's latent space, and the canvas must be that space's encoding of white paper.
Paint's vae (pacing 'change') is TAESD too: its probe decodes follow what the frames will show, and cost less.
"""


def wf_fast_render(specs) -> Workflow:
    wf = Workflow("Render fast with TAESD", specs)
    ckpt, pos, neg = model_block(wf)
    latent = add(wf, "EmptyLatentImage", width=512, height=512, batch_size=1)
    samp = sampler(wf, ckpt, pos, neg, latent)
    taesd = add(wf, "VAELoader", title="Load VAE (TAESD of the model's family)", vae_name="taesd")
    n_fast = wf.note(NOTE_FAST, (400, 560))
    pnt = painter(wf)
    cnv = canvas(wf, samp, ckpt)
    pt = paint(wf, samp, pnt, taesd, frames=1000, canvas_node=cnv)
    out = render(wf, taesd, pt, "latent_painter/fast_taesd")
    dec, prev = final_preview(wf, ckpt, samp)
    dec.title = "VAE Decode (final image, full VAE)"

    x = wf.column(0, 0, [ckpt, latent, pos, neg], "1. Model, size and prompt", width=400)
    x = wf.column(x, 0, [samp, dec, prev], "2. Sample; the final image by the full VAE")
    x = wf.column(x, 0, [taesd, n_fast], "3. TAESD for the frames", width=400)
    x = wf.column(x, 0, [pnt, cnv, pt], "4. Canvas from the full VAE, paint")
    wf.column(x, 0, [out], "5. Render with TAESD, decode auto", width=400)
    return wf


ALL = (wf_capture, wf_paint_an_image, wf_custom_sampling, wf_white_canvas, wf_reveal_chain, wf_transition, wf_pingpong,
       wf_save_plan, wf_load_plan, wf_render, wf_paint_a_picture, wf_paint_a_picture_with_your_model,
       wf_diffusion_model, wf_fast_render)


def object_info(argv: list[str]) -> dict:
    if argv:
        return json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_workflows import CORE_NODES, pack_object_info

    return {**json.loads(CORE_NODES.read_text(encoding="utf-8")), **pack_object_info()}


def main(argv: list[str]) -> int:
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 2
    info = object_info(argv)
    specs = {name: Spec(name, value) for name, value in info.items()}
    for make in ALL:
        wf = make(specs)
        path = HERE / f"{wf.stem}.json"
        path.write_text(json.dumps(wf.build(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", path.name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
