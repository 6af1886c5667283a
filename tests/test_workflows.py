"""The example workflows in workflows/ are valid ComfyUI UI-format files (no ComfyUI needed).

Every ``workflows/*.json`` is checked against what ComfyUI 0.8.0 and its frontend (1.35) accept:
the UI format (version 0.4) and its bookkeeping (ids, link tables on both ends), every node type
known (ours from NODE_CLASS_MAPPINGS, core ones from ``tests/data/core_nodes.json``, a trimmed
copy of the host's ``/object_info`` that ``tests/host/test_frontend.py`` keeps honest), every
link joining an output to an input of a matching type (``*`` and comma unions as ComfyUI
matches them), required sockets connected, ``widgets_values`` positional as the frontend writes
them (including the control_after_generate entry after seed widgets), in range and in their
combo lists, a Note explaining the knobs, no overlapping nodes, and a small JPEG thumbnail.
The last tests feed deliberately broken copies to the same checker, so it is known to bite.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from latent_painter.nodes import NODE_CLASS_MAPPINGS, host

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
CORE_NODES = Path(__file__).resolve().parent / "data" / "core_nodes.json"

TOP_KEYS = {"id", "revision", "last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version"}
NODE_KEYS = {"id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties", "widgets_values"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL = "control_after_generate"
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
# Node types the frontend defines itself (not in /object_info): one text widget, no sockets.
FRONTEND_ONLY = {"Note", "MarkdownNote"}
# Combos whose choices are the host's files: any file name is fine in a shipped workflow.
FILE_COMBOS = {("CheckpointLoaderSimple", "ckpt_name"), ("LatentPainterLoadPlan", "plan"), ("UNETLoader", "unet_name"),
               ("CLIPLoader", "clip_name"), ("DualCLIPLoader", "clip_name1"), ("DualCLIPLoader", "clip_name2"),
               ("VAELoader", "vae_name"), ("LoadImage", "image")}
MAX_THUMBNAIL_BYTES = 60_000
TITLE_HEIGHT = 30  # LiteGraph draws a node's title bar above its pos


# ---------------------------------------------------------------------- node specs
def trim_object_info(info: dict, types) -> dict:
    """The parts of ``/object_info`` entries the checks need, for ``types`` only: inputs without
    tooltips (file-list combos emptied), input order, outputs and whether it is an output node."""
    out = {}
    for name in sorted(types):
        entry = info[name]
        inputs = {}
        for section in ("required", "optional"):
            if section not in entry["input"]:
                continue
            inputs[section] = {}
            for key, spec in entry["input"][section].items():
                kind = spec[0]
                options = {k: v for k, v in (spec[1] if len(spec) > 1 else {}).items() if k != "tooltip"}
                if (name, key) in FILE_COMBOS:
                    kind = [] if isinstance(kind, list) else kind
                    if "options" in options:
                        options["options"] = []
                inputs[section][key] = [kind, options]
        out[name] = {
            "input": inputs,
            "input_order": {k: v for k, v in entry["input_order"].items() if k in ("required", "optional")},
            "output": entry["output"],
            "output_name": entry["output_name"],
            "output_node": bool(entry.get("output_node")),
        }
    return out


def pack_object_info() -> dict:
    """Our nodes in ``/object_info`` form, from NODE_CLASS_MAPPINGS in this process. Host lookups
    (sampler/scheduler lists, plan files) are answered from the core fixture, so no ComfyUI is needed."""
    core = json.loads(CORE_NODES.read_text(encoding="utf-8"))
    samplers = combo_choices(core["KSamplerSelect"]["input"]["required"]["sampler_name"])
    schedulers = combo_choices(core["BasicScheduler"]["input"]["required"]["scheduler"])
    saved = host.sampler_names, host.scheduler_names, host.plan_files
    host.sampler_names, host.scheduler_names, host.plan_files = (lambda: samplers), (lambda: schedulers), (lambda: [])
    try:
        info = {}
        for name, cls in NODE_CLASS_MAPPINGS.items():
            types = cls.INPUT_TYPES()
            inputs = {s: {k: [v[0], dict(v[1]) if len(v) > 1 else {}] for k, v in types[s].items()}
                      for s in ("required", "optional") if s in types}
            info[name] = {
                "input": inputs,
                "input_order": {s: list(types[s]) for s in ("required", "optional") if s in types},
                "output": list(cls.RETURN_TYPES),
                "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES),
                "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
            }
    finally:
        host.sampler_names, host.scheduler_names, host.plan_files = saved
    return trim_object_info(info, info)


def combo_choices(spec) -> list | None:
    """The choices of a combo input spec (V1 ``[[...], {}]`` or V3 ``["COMBO", {"options": [...]}]``), else None."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list(options.get("options", []))
    return None


class Spec:
    """A node type as the frontend builds it: socket inputs, the widget list, outputs."""

    def __init__(self, name: str, entry: dict | None):
        self.name = name
        self.sockets: list[tuple[str, str, bool]] = []  # (name, type, required)
        self.widgets: list[str] = []  # widgets_values order, control_after_generate included
        self.inputs: dict[str, list] = {}
        if entry is None:  # a frontend-only note
            self.widgets, self.inputs = ["text"], {"text": ["STRING", {"multiline": True}]}
            self.outputs, self.output_node = [], False
            return
        for section in ("required", "optional"):
            specs = entry["input"].get(section, {})
            for key in entry["input_order"].get(section, list(specs)):
                spec = specs[key]
                self.inputs[key] = spec
                kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
                if combo_choices(spec) is not None or (kind in WIDGET_TYPES and not options.get("forceInput")):
                    self.widgets.append(key)
                    if kind == "INT" and options.get(CONTROL):
                        self.widgets.append(CONTROL)
                    if options.get("image_upload"):  # Load Image's upload button: a widget value of its own
                        self.widgets.append("upload")
                        self.inputs["upload"] = ["IMAGEUPLOAD", {}]
                else:
                    self.sockets.append((key, kind, section == "required"))
        self.outputs = list(zip(entry["output_name"], entry["output"]))
        self.output_node = entry["output_node"]

    def input_type(self, key: str) -> str:
        spec = self.inputs[key]
        return "COMBO" if combo_choices(spec) is not None else spec[0]


def load_specs() -> dict[str, Spec]:
    core = json.loads(CORE_NODES.read_text(encoding="utf-8"))
    specs = {name: Spec(name, entry) for name, entry in core.items()}
    specs.update({name: Spec(name, entry) for name, entry in pack_object_info().items()})
    specs.update({name: Spec(name, None) for name in FRONTEND_ONLY})
    return specs


def types_match(output_type: str, input_type: str) -> bool:
    """ComfyUI's rule for a link: equal, either side ``*``, or comma-separated unions that overlap."""
    if output_type == input_type or "*" in (output_type, input_type):
        return True
    outs = {t.strip() for t in str(output_type).split(",")}
    ins = {t.strip() for t in str(input_type).split(",")}
    return bool(outs & ins)


# ---------------------------------------------------------------------- the checker
def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_value(node_type: str, key: str, spec, value) -> str | None:
    where = f"{node_type}.{key}"
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    choices = combo_choices(spec)
    if choices is not None:
        if not isinstance(value, str):
            return f"{where}: combo value {value!r} is not a string"
        if (node_type, key) not in FILE_COMBOS and value not in choices:
            return f"{where}: {value!r} is not one of {choices[:8]}{'...' if len(choices) > 8 else ''}"
        return None
    if kind == "IMAGEUPLOAD":
        return None if value == "image" else f"{where}: {value!r} is not 'image' (what the upload button saves)"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{where}: {value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{where}: {value!r} is not a string"
    if kind == "INT" and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"{where}: {value!r} is not an integer"
    if kind == "FLOAT" and not _number(value):
        return f"{where}: {value!r} is not a number"
    low, high = options.get("min", -math.inf), options.get("max", math.inf)
    if not low <= value <= high:
        return f"{where}: {value} is outside [{low}, {high}]"
    if kind == "INT" and options.get("step", 1) > 1 and (value - options.get("min", 0)) % options["step"]:
        return f"{where}: {value} is not on the widget's step {options['step']}"
    return None


def validate(wf: dict, specs: dict[str, Spec]) -> list[str]:
    """Everything wrong with a UI-format workflow, as readable lines (empty = valid)."""
    problems: list[str] = []
    bad = problems.append
    if not isinstance(wf, dict):
        return ["not a JSON object"]
    missing = TOP_KEYS - set(wf)
    if missing:
        bad(f"top-level keys missing: {sorted(missing)}")
    for key, value in wf.items():
        if value is None:
            bad(f"top-level {key!r} is null (the frontend's schema rejects it; omit the key)")
    if wf.get("version") != 0.4:
        bad(f"version is {wf.get('version')!r}, expected 0.4")
    if not isinstance(wf.get("id"), str) or not wf.get("id"):
        bad("id must be a non-empty string (a UUID)")
    extra = wf.get("extra")
    if not isinstance(extra, dict) or any(v is None for v in extra.values()):
        bad("extra must be an object without null values")
    if not isinstance(wf.get("config"), dict):
        bad("config must be an object")
    nodes, links, groups = wf.get("nodes"), wf.get("links"), wf.get("groups")
    if not isinstance(nodes, list) or not nodes or not isinstance(links, list) or not isinstance(groups, list):
        return problems + ["nodes (non-empty), links and groups must be lists"]

    by_id: dict[int, dict] = {}
    for node in nodes:
        nid = node.get("id") if isinstance(node, dict) else None
        if not isinstance(nid, int) or nid in by_id:
            bad(f"node id {nid!r} is not a unique integer")
            continue
        by_id[nid] = node
        lacking = NODE_KEYS - set(node)
        if lacking:
            bad(f"node {nid} ({node.get('type')}): keys missing {sorted(lacking)}")
    if isinstance(wf.get("last_node_id"), int) and by_id and wf["last_node_id"] < max(by_id):
        bad(f"last_node_id {wf['last_node_id']} is below the largest node id {max(by_id)}")

    link_table: dict[int, list] = {}
    for link in links:
        if not (isinstance(link, list) and len(link) == 6 and all(isinstance(x, int) for x in link[:5])
                and isinstance(link[5], str)):
            bad(f"link {link!r} is not [id, from_node, from_slot, to_node, to_slot, type]")
            continue
        if link[0] in link_table:
            bad(f"link id {link[0]} is used twice")
        link_table[link[0]] = link
    if isinstance(wf.get("last_link_id"), int) and link_table and wf["last_link_id"] < max(link_table):
        bad(f"last_link_id {wf['last_link_id']} is below the largest link id {max(link_table)}")

    notes = 0
    outputs_nodes = 0
    for nid, node in by_id.items():
        kind = node.get("type")
        where = f"node {nid} ({kind})"
        spec = specs.get(kind)
        if spec is None:
            bad(f"{where}: unknown node type {kind!r} (neither a core node, a frontend note nor one of ours)")
            continue
        if not (isinstance(node.get("pos"), list) and len(node["pos"]) == 2 and all(map(_number, node["pos"]))):
            bad(f"{where}: pos must be [x, y]")
        if not (isinstance(node.get("size"), list) and len(node["size"]) == 2
                and all(_number(v) and v > 0 for v in node["size"])):
            bad(f"{where}: size must be [w, h] > 0")
        if node.get("mode") not in (0, 2, 4):
            bad(f"{where}: mode {node.get('mode')!r} is not 0 (always), 2 (never) or 4 (bypass)")
        if kind in FRONTEND_ONLY:
            text = (node.get("widgets_values") or [None])[0]
            if isinstance(text, str) and text.strip():
                notes += 1
            else:
                bad(f"{where}: a note without text")
        elif node.get("properties", {}).get("Node name for S&R") not in (None, kind):
            bad(f"{where}: properties['Node name for S&R'] is not the node type")
        outputs_nodes += spec.output_node

        # inputs: declared, typed, linked consistently
        inputs = node.get("inputs") or []
        seen = set()
        for slot, inp in enumerate(inputs):
            key = inp.get("name")
            if key in seen:
                bad(f"{where}: input {key!r} listed twice")
            seen.add(key)
            if key not in spec.inputs:
                bad(f"{where}: input {key!r} is not declared by {kind}")
                continue
            declared = spec.input_type(key)
            if inp.get("type") != declared:
                bad(f"{where}: input {key!r} has type {inp.get('type')!r}, declared {declared!r}")
            is_widget = key in spec.widgets
            if is_widget and inp.get("widget", {}).get("name") != key:
                bad(f"{where}: widget input {key!r} lacks widget: {{name: {key!r}}}")
            lid = inp.get("link")
            if lid is None:
                continue
            link = link_table.get(lid)
            if link is None:
                bad(f"{where}: input {key!r} refers to link {lid}, which is not in links")
                continue
            if link[3] != nid or link[4] != slot:
                bad(f"{where}: input {key!r} (slot {slot}) has link {lid}, but that link goes to node {link[3]} slot {link[4]}")
        for key, kind_, required in spec.sockets:
            entry = next((i for i in inputs if i.get("name") == key), None)
            if entry is None:
                bad(f"{where}: socket input {key!r} is missing from inputs")
            elif required and entry.get("link") is None and node.get("mode") == 0:
                bad(f"{where}: required input {key!r} is not connected")

        # outputs: as declared, links consistent
        outputs = node.get("outputs") or []
        if [(o.get("name"), o.get("type")) for o in outputs] != [tuple(o) for o in spec.outputs]:
            bad(f"{where}: outputs {[(o.get('name'), o.get('type')) for o in outputs]} differ from {spec.outputs}")
        for slot, out in enumerate(outputs):
            for lid in out.get("links") or []:
                link = link_table.get(lid)
                if link is None or link[1] != nid or link[2] != slot:
                    bad(f"{where}: output {out.get('name')!r} lists link {lid}, which does not start there")

        # widgets_values: positional, like the frontend
        values = node.get("widgets_values")
        if not isinstance(values, list):
            bad(f"{where}: widgets_values must be a list")
            continue
        if len(values) != len(spec.widgets):
            bad(f"{where}: widgets_values has {len(values)} entries, the frontend expects {len(spec.widgets)}: {spec.widgets}")
            continue
        for key, value in zip(spec.widgets, values):
            if key == CONTROL:
                if value not in CONTROL_VALUES:
                    bad(f"{where}: control_after_generate {value!r} is not one of {sorted(CONTROL_VALUES)}")
                continue
            problem = check_value(kind, key, spec.inputs[key], value)
            if problem:
                bad(f"{where}: {problem}")

    # links: ends exist, types agree
    for lid, (_, src, sslot, dst, dslot, ltype) in link_table.items():
        a, b = by_id.get(src), by_id.get(dst)
        if a is None or b is None:
            bad(f"link {lid}: node {src if a is None else dst} does not exist")
            continue
        a_spec, b_spec = specs.get(a["type"]), specs.get(b["type"])
        if a_spec is None or b_spec is None:
            continue
        if not 0 <= sslot < len(a_spec.outputs):
            bad(f"link {lid}: {a['type']} has no output slot {sslot}")
            continue
        b_inputs = b.get("inputs") or []
        if not 0 <= dslot < len(b_inputs):
            bad(f"link {lid}: {b['type']} has no input slot {dslot}")
            continue
        out_name, out_type = a_spec.outputs[sslot]
        in_name = b_inputs[dslot].get("name")
        a_outputs = a.get("outputs") or []
        listed = (a_outputs[sslot].get("links") or []) if sslot < len(a_outputs) else []
        if lid not in listed:
            bad(f"link {lid}: not listed in {a['type']}.{out_name}'s links")
        if b_inputs[dslot].get("link") != lid:
            bad(f"link {lid}: {b['type']}.{in_name} does not point back to it")
        if ltype != out_type:
            bad(f"link {lid}: type {ltype!r} differs from its output {a['type']}.{out_name} ({out_type})")
        if in_name in b_spec.inputs and not types_match(out_type, b_spec.input_type(in_name)):
            bad(f"link {lid}: {b['type']}.{in_name} ({b_spec.input_type(in_name)}) does not accept "
                f"{a['type']}.{out_name} ({out_type})")

    if notes == 0:
        bad("no Note node: every example workflow explains its knobs in a Note")
    if outputs_nodes == 0:
        bad("no output node: queueing it would do nothing")
    for group in groups:
        box = group.get("bounding") if isinstance(group, dict) else None
        if not (isinstance(group, dict) and isinstance(group.get("title"), str)
                and isinstance(box, list) and len(box) == 4 and all(map(_number, box))):
            bad(f"group {group!r} needs a title and a bounding [x, y, w, h]")
    problems.extend(overlaps(list(by_id.values())))
    return problems


def overlaps(nodes: list[dict]) -> list[str]:
    """Nodes drawn on top of each other (title bar included): a layout that is not tidy."""
    boxes = []
    for node in nodes:
        try:
            (x, y), (w, h) = node["pos"], node["size"]
        except (KeyError, TypeError, ValueError):
            continue
        boxes.append((node["id"], node.get("type"), x, y - TITLE_HEIGHT, x + w, y + h))
    found = []
    for i, (ia, ta, ax0, ay0, ax1, ay1) in enumerate(boxes):
        for ib, tb, bx0, by0, bx1, by1 in boxes[i + 1:]:
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                found.append(f"nodes {ia} ({ta}) and {ib} ({tb}) overlap")
    return found


# ---------------------------------------------------------------------- the files
def workflow_paths() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def specs() -> dict[str, Spec]:
    return load_specs()


def test_there_are_workflows():
    assert len(workflow_paths()) >= 8, [p.name for p in workflow_paths()]


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.stem)
def test_workflow_is_valid(path, specs):
    problems = validate(load(path), specs)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.stem)
def test_workflow_has_a_small_thumbnail(path):
    from PIL import Image

    thumb = path.with_suffix(".jpg")
    assert thumb.is_file(), f"{path.name} has no thumbnail {thumb.name} (the template browser shows it)"
    size = thumb.stat().st_size
    assert 0 < size < MAX_THUMBNAIL_BYTES, f"{thumb.name} is {size} bytes; keep it under {MAX_THUMBNAIL_BYTES}"
    with Image.open(thumb) as image:
        assert image.format == "JPEG", thumb.name
        assert min(image.size) >= 128, f"{thumb.name} is only {image.size}"
    assert not [p.name for p in WORKFLOWS.glob("*.jpg") if not p.with_suffix(".json").is_file()], "orphan thumbnails"


def test_every_capability_has_a_workflow():
    """One example per capability the pack offers (README "Nodes")."""
    flows = {p.stem: load(p) for p in workflow_paths()}

    def nodes(wf, kind):
        return [n for n in wf["nodes"] if n["type"] == kind]

    def widget(wf, node, key, specs_=load_specs()):
        return node["widgets_values"][specs_[node["type"]].widgets.index(key)]

    def has(test):
        return [stem for stem, wf in flows.items() if test(wf)]

    def linked_inputs(node):
        return {slot["name"] for slot in node.get("inputs", []) if slot.get("link") is not None}

    wanted = {
        "an unchanged core KSampler graph captured, its plan painted": lambda wf: all(
            nodes(wf, k) for k in ("LatentPainterCapture", "KSampler", "LatentPainterGetPlan", "LatentPainterPaint",
                                   "SaveAnimatedWEBP")),
        "KSampler-style painting saved as WEBP and video": lambda wf: nodes(wf, "LatentPainterSampler")
        and nodes(wf, "SaveAnimatedWEBP") and nodes(wf, "SaveVideo") and nodes(wf, "LatentPainterPaint"),
        "custom sampling": lambda wf: nodes(wf, "LatentPainterSamplerCustom") and all(
            nodes(wf, k) for k in ("RandomNoise", "CFGGuider", "KSamplerSelect", "BasicScheduler")),
        "white canvas with the coloured stroke map beside": lambda wf: any(
            widget(wf, n, "white_canvas") and widget(wf, n, "stroke_map_side_by_side")
            and "stroke_maps" in linked_inputs(n) for n in nodes(wf, "LatentPainterDecodeFrames")),
        "painting on a white Canvas": lambda wf: any(
            widget(wf, n, "kind") == "white" for n in nodes(wf, "LatentPainterCanvas")),
        "reveal action chain": lambda wf: {"fade", "glow", "flip"} <= {
            widget(wf, n, "kind") for n in nodes(wf, "LatentPainterAction")} and nodes(wf, "LatentPainterStrokes"),
        "transition between two checkpoints": lambda wf: nodes(wf, "LatentPainterTransition")
        and len({widget(wf, n, "ckpt_name") for n in nodes(wf, "CheckpointLoaderSimple")}) == 2,
        "ping-pong loop": lambda wf: any(widget(wf, n, "pingpong") for n in nodes(wf, "LatentPainterTransition")),
        "save a plan": lambda wf: nodes(wf, "LatentPainterSavePlan"),
        "load a plan": lambda wf: nodes(wf, "LatentPainterLoadPlan") and nodes(wf, "LatentPainterPaint"),
        "render to mp4 and webp": lambda wf: {"mp4", "webp"} <= {
            widget(wf, n, "format") for n in nodes(wf, "LatentPainterRender")},
        "diffusion model, text encoder and VAE loaders with the family's empty latent, captured": lambda wf: all(
            nodes(wf, k) for k in ("UNETLoader", "CLIPLoader", "VAELoader", "EmptySD3LatentImage",
                                   "LatentPainterCapture", "LatentPainterGetPlan", "LatentPainterCanvas",
                                   "LatentPainterPaint", "LatentPainterRender"))
        and not nodes(wf, "CheckpointLoaderSimple"),
        "frames rendered by core Load VAE's TAESD, the canvas from the model's own VAE": lambda wf: any(
            widget(wf, v, "vae_name") in ("taesd", "taesdxl", "taesd3", "taef1")
            and any(lk[1] == v["id"] and lk[3] == r["id"] for lk in wf["links"] for r in nodes(wf, "LatentPainterRender"))
            for v in nodes(wf, "VAELoader"))
        and any(lk[3] == c["id"] and lk[1] in {n["id"] for n in nodes(wf, "CheckpointLoaderSimple")}
                for lk in wf["links"] for c in nodes(wf, "LatentPainterCanvas")),
    }
    lacking = [name for name, test in wanted.items() if not has(test)]
    assert not lacking, f"no workflow shows: {lacking}"


def test_core_fixture_lists_exactly_the_core_nodes_used():
    core = set(json.loads(CORE_NODES.read_text(encoding="utf-8")))
    used = {n["type"] for p in workflow_paths() for n in load(p)["nodes"]}
    used -= set(NODE_CLASS_MAPPINGS) | FRONTEND_ONLY
    # KSamplerSelect/BasicScheduler also supply the sampler and scheduler lists for our own nodes.
    assert core == used | {"KSamplerSelect", "BasicScheduler"}, (
        f"tests/data/core_nodes.json has {sorted(core - used)} unused and lacks {sorted(used - core)}; "
        "regenerate it: python tests/host/test_frontend.py --write-core-nodes")


# Nodes whose ``decode`` widget picks how frames are decoded; templates reach users at full speed
# with ``auto`` (it decodes incrementally only where the pack promises the bound, README
# "Incremental decoding"), so any other mode needs a Note in the same graph that says why.
DECODE_NODES = ("LatentPainterDecodeFrames", "LatentPainterRender")


def decode_problems(wf: dict, specs: dict[str, Spec]) -> list[str]:
    """Decode Frames / Render nodes saving a mode other than ``auto`` without a Note that names it
    (``decode: full`` or ``decode: incremental`` in the Note's text, with the reason beside it)."""
    notes = " ".join(str((n.get("widgets_values") or [""])[0]) for n in wf["nodes"] if n["type"] in FRONTEND_ONLY)
    problems = []
    for node in wf["nodes"]:
        if node["type"] not in DECODE_NODES:
            continue
        mode = node["widgets_values"][specs[node["type"]].widgets.index("decode")]
        if mode != "auto" and f"decode: {mode}" not in notes:
            problems.append(f"node {node['id']} ({node['type']}) saves decode {mode!r} without a Note saying why "
                            f"(a Note with 'decode: {mode}' and the reason); templates use 'auto'")
    return problems


@pytest.mark.parametrize("path", workflow_paths(), ids=lambda p: p.stem)
def test_templates_decode_with_auto_or_say_why(path, specs):
    problems = decode_problems(load(path), specs)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_a_template_saving_another_decode_mode_needs_a_note(mode, specs):
    wf = copy.deepcopy(load(WORKFLOWS / f"{BASE}.json"))
    node = _node(wf, "LatentPainterDecodeFrames")
    node["widgets_values"][specs["LatentPainterDecodeFrames"].widgets.index("decode")] = mode
    assert any(f"saves decode {mode!r} without a Note" in p for p in decode_problems(wf, specs))
    note = _node(wf, "Note")
    note["widgets_values"][0] += f"decode: {mode} here, because this example compares it with auto.\n"
    assert not decode_problems(wf, specs)


def test_default_checkpoint_is_a_common_sd15_name():
    names = {n["widgets_values"][0] for p in workflow_paths() for n in load(p)["nodes"]
             if n["type"] == "CheckpointLoaderSimple"}
    assert "v1-5-pruned-emaonly-fp16.safetensors" in names, names


# ---------------------------------------------------------------------- the checker bites
BASE = "Paint an image"


def _node(wf, kind):
    return next(n for n in wf["nodes"] if n["type"] == kind)


def _break_link_type(wf):
    paint = _node(wf, "LatentPainterPaint")
    painter = _node(wf, "LatentPainterStrokes")
    plan_link = paint["inputs"][0]["link"]
    link = next(lk for lk in wf["links"] if lk[0] == plan_link)
    # connect the painter's output to Paint's plan input, as a careless edit would
    link[1], link[2], link[5] = painter["id"], 0, "PAINTER"
    painter["outputs"][0]["links"].append(plan_link)


def _drop_control(wf):
    _node(wf, "LatentPainterSampler")["widgets_values"].pop(1)


def _unplug_required(wf):
    paint = _node(wf, "LatentPainterPaint")
    lid = paint["inputs"][1]["link"]
    paint["inputs"][1]["link"] = None
    wf["links"] = [lk for lk in wf["links"] if lk[0] != lid]
    for node in wf["nodes"]:
        for out in node["outputs"]:
            out["links"] = [x for x in out.get("links") or [] if x != lid]


def _stack_nodes(wf):
    _node(wf, "LatentPainterPaint")["pos"] = list(_node(wf, "LatentPainterStrokes")["pos"])


BREAKAGES = {
    "unknown node type": (lambda wf: _node(wf, "LatentPainterPaint").update(type="LatentPainterPaintt"),
                          "unknown node type"),
    "link of the wrong type": (_break_link_type, "does not accept"),
    "widget out of range": (lambda wf: _node(wf, "LatentPainterSampler")["widgets_values"].__setitem__(2, 0),
                            "outside [1,"),
    "combo value not offered": (lambda wf: _node(wf, "LatentPainterSampler")["widgets_values"].__setitem__(4, "eulerr"),
                                "is not one of"),
    "control_after_generate missing": (_drop_control, "the frontend expects 7"),
    "bad control value": (lambda wf: _node(wf, "LatentPainterSampler")["widgets_values"].__setitem__(1, "random"),
                          "control_after_generate 'random'"),
    "integer widget given a float": (lambda wf: _node(wf, "LatentPainterPaint")["widgets_values"].__setitem__(0, 2.5),
                                     "is not an integer"),
    "boolean widget given a string": (
        lambda wf: _node(wf, "LatentPainterAssembleFrames")["widgets_values"].__setitem__(2, "false"), "not a boolean"),
    "no note": (lambda wf: wf.update(nodes=[n for n in wf["nodes"] if n["type"] != "Note"]), "no Note node"),
    "required socket unplugged": (_unplug_required, "required input 'painter' is not connected"),
    "dangling link": (lambda wf: wf.update(links=wf["links"][:-1]), "which is not in links"),
    "null top-level key": (lambda wf: wf.update(floatingLinks=None), "is null"),
    "wrong version": (lambda wf: wf.update(version=0.3), "version is 0.3"),
    "overlapping nodes": (_stack_nodes, "overlap"),
    "no output node": (lambda wf: wf.update(nodes=[n for n in wf["nodes"] if not n["type"].startswith(("Save", "Preview"))]),
                       "no output node"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_copies_are_rejected(breakage, specs):
    wf = load(WORKFLOWS / f"{BASE}.json")
    assert not validate(wf, specs)
    broken = copy.deepcopy(wf)
    damage, expected = BREAKAGES[breakage]
    damage(broken)
    problems = validate(broken, specs)
    assert any(expected in p for p in problems), f"{breakage}: expected {expected!r} in {problems}"


def test_type_matching_follows_comfyui():
    assert types_match("LATENT", "LATENT")
    assert types_match("*", "LATENT") and types_match("IMAGE", "*")
    assert types_match("IMAGE,MASK", "MASK")
    assert not types_match("PAINTER", "LATENT_PLAN")
    assert not types_match("LATENT", "LATENT_PLAN")
