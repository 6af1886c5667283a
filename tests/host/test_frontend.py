"""The example workflows in the real ComfyUI frontend, driven by headless Chromium.

For every ``workflows/*.json``: the server lists and serves it (and its thumbnail) as a custom
node template; the frontend opens it with ``app.loadGraphData`` without a "missing nodes" dialog
or a schema alert, knows every node type, and saves it back (``app.graph.serialize()``) with the
same widgets_values, inputs and links, so the files are exactly what the frontend writes. Then
each workflow is queued from the frontend (``app.queuePrompt``) with the test checkpoints put in
and its sizes lowered (64x64 px, a few steps and frames), and the files its output nodes write
must appear in the server's output folder. A deliberately broken copy proves the missing-node
check bites, and ``tests/data/core_nodes.json`` is compared with the live ``/object_info``.

Skipped without COMFYUI_PATH (conftest), without Python ``playwright`` or without a Chromium
(``/usr/bin/chromium`` or ``$LATENT_PAINTER_CHROMIUM``); Debian: ``apt-get install chromium`` and
``pip install playwright`` (no browser download is needed).

Regenerate the core node fixture from a running host:
``COMFYUI_PATH=... python tests/host/test_frontend.py --write-core-nodes``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for test_workflows

from test_workflows import (  # noqa: E402
    CORE_NODES,
    FRONTEND_ONLY,
    WORKFLOWS,
    load,
    load_specs,
    trim_object_info,
    workflow_paths,
)

CHROMIUM = os.environ.get("LATENT_PAINTER_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PACK = "latent_painter"  # the pack's folder name under the host's custom_nodes (comfy_host.PACK_DIR_NAME)
SAVE_PLAN, LOAD_PLAN = "Save a plan", "Load a plan and paint it"
TEST_PLAN_PREFIX = "lp_frontend_test/plan"

# Test-size settings: every workflow's own values are replaced by these before queueing.
TEST_WIDGETS = {
    "EmptyLatentImage": {"width": 64, "height": 64},
    "EmptySD3LatentImage": {"width": 64, "height": 64},
    "LatentPainterPaint": {"frames": 8, "cleanup_frames": 2},
    "LatentPainterTransition": {"frames": 6, "cleanup_frames": 2, "guidance_steps": 3},
    "LatentPainterAssembleFrames": {"hold_first": 1, "hold_last": 2},
    "LatentPainterSavePlan": {"filename_prefix": TEST_PLAN_PREFIX},
    "LatentPainterPlanFromImage": {"steps": 4},
}
PICTURE_SIZE = 64  # the photo put in the host's input folder for Load Image
OUTPUT_SUFFIX = {"SaveAnimatedWEBP": ".webp", "SaveVideo": ".mp4", "SaveImage": ".png", "PreviewImage": ".png"}
# Templates run at other test sizes: with TAESD, 256 px (a 32x32 latent) is a size whose
# crops are cheaper than a full decode, so 'auto' can show its incremental path.
FAST_RENDER = "Render fast with TAESD"
DIFFUSION_MODEL = "Paint with a diffusion model, text encoder and VAE"
STEM_OVERRIDES = {FAST_RENDER: {"EmptyLatentImage": {"width": 256, "height": 256},
                                "LatentPainterPaint": {"frames": 24, "cleanup_frames": 2}}}
# The decode path each template must report in its nodes' UI text with decode 'auto' at test sizes
# (None: whichever path auto picks; the text must still name it). Core TAESD of the family: staged.
EXPECTED_PATH = {FAST_RENDER: "staged"}
DECODE_NODES = ("LatentPainterDecodeFrames", "LatentPainterRender")
# Core VAELoader's names for the TAESD files in models/vae_approx: kept as saved (the test host has taesd).
TAESD_OPTIONS = ("taesd", "taesdxl", "taesd3", "taef1")
RUNS: dict[str, dict] = {}  # stem -> seconds and decode reports, printed at the end of the module


def _stems(exclude=()):
    return [p.stem for p in workflow_paths() if p.stem not in exclude]


# ---------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def sync_api():
    api = pytest.importorskip("playwright.sync_api", reason="frontend tests need Python playwright")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"frontend tests need Chromium at {CHROMIUM} (apt-get install chromium, or set LATENT_PAINTER_CHROMIUM)")
    return api


class Frontend:
    """One page of the real frontend: load workflows, read them back, queue them."""

    def __init__(self, page, comfy):
        self.page, self.comfy = page, comfy
        self.alerts: list[str] = []
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog):
        self.alerts.append(dialog.message)
        dialog.dismiss()

    def open(self) -> "Frontend":
        # A fresh user directory would greet us with the template browser; a returning user is not.
        self.comfy.post_json("/settings/Comfy.TutorialCompleted", True)
        self.page.goto(self.comfy.url + "/", wait_until="domcontentloaded")
        self.page.wait_for_function(
            "window.app && window.app.graph && window.LiteGraph && "
            "Object.keys(LiteGraph.registered_node_types).length > 100", timeout=180_000)
        self.page.wait_for_timeout(1000)
        return self

    def close_dialogs(self) -> None:
        """Close every open dialog (missing models/nodes), top one first, with its close button."""
        for _ in range(8):
            if not self.page.locator(".p-dialog").count():
                break
            buttons = self.page.locator(".p-dialog .p-dialog-close-button")
            if buttons.count():
                buttons.last.click()
            else:
                self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(250)
        left = self.page.evaluate("() => Array.from(document.querySelectorAll('.p-dialog'))"
                                  ".map(d => (d.getAttribute('aria-labelledby') || '') + ': ' + d.innerText.slice(0, 200))")
        assert not left, f"dialogs stay open: {left}"

    def load(self, workflow: dict) -> dict:
        """loadGraphData; returns the serialised graph, the dialog/toast texts and unknown node types."""
        self.close_dialogs()
        self.alerts.clear()
        result = self.page.evaluate(
            """async (wf) => {
                await app.loadGraphData(wf);
                await new Promise(r => setTimeout(r, 400));
                const texts = Array.from(document.querySelectorAll('.p-dialog, .p-toast-message'))
                    .map(d => d.innerText);
                const unknown = app.graph._nodes.map(n => n.type)
                    .filter(t => !LiteGraph.registered_node_types[t]);
                return {graph: JSON.parse(JSON.stringify(app.graph.serialize())), texts, unknown};
            }""", workflow)
        result["alerts"] = list(self.alerts)
        return result

    def registered(self) -> set[str]:
        return set(self.page.evaluate("() => Object.keys(LiteGraph.registered_node_types)"))

    def received_texts(self, node_ids: list[int], timeout_ms: int = 30_000) -> dict:
        """app.nodeOutputs once every listed node's UI text has arrived (or the timeout passed): the
        server records a prompt as done over HTTP before the page has handled the last 'executed'
        message of its websocket, so reading the page at once can race that message."""
        script = """(ids) => { const out = app.nodeOutputs || {};
            return ids.every(id => Object.keys(out).some(k => String(k).split(':').pop() === String(id)
                && out[k] && out[k].text)); }"""
        from playwright.sync_api import TimeoutError as PageTimeout

        try:
            self.page.wait_for_function(script, arg=node_ids, timeout=timeout_ms)
        except PageTimeout:  # the caller's assertion names what is missing
            pass
        return self.page.evaluate("() => JSON.parse(JSON.stringify(app.nodeOutputs || {}))")

    def queue(self) -> str:
        """app.queuePrompt(0, 1) as the Run button does; returns the prompt id the server gave."""
        self.close_dialogs()
        with self.page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST",
                                       timeout=120_000) as answer:
            self.page.evaluate("() => app.queuePrompt(0, 1)")
        response = answer.value
        body = response.json()
        assert response.ok and body.get("prompt_id"), (
            f"/prompt refused the frontend's prompt (HTTP {response.status}): {json.dumps(body, indent=1)[:4000]}")
        assert not body.get("node_errors"), json.dumps(body["node_errors"], indent=1)
        return body["prompt_id"]


@pytest.fixture(scope="module")
def frontend(sync_api, comfy, models):
    # The checkpoints exist before the page loads, so the loader's combo lists them.
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            yield Frontend(page, comfy).open()
        finally:
            browser.close()


# ---------------------------------------------------------------------- fixture and templates
def test_core_node_fixture_matches_the_host(comfy):
    fixture = json.loads(CORE_NODES.read_text(encoding="utf-8"))
    live = trim_object_info(comfy.object_info(), fixture)
    changed = sorted(k for k in fixture if fixture[k] != live[k])
    assert not changed, (f"tests/data/core_nodes.json differs from this host's /object_info for {changed}; "
                         "regenerate it with: python tests/host/test_frontend.py --write-core-nodes")


def _get(comfy, route: str):
    with urllib.request.urlopen(comfy.url + route, timeout=60) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def test_workflows_are_served_as_templates(comfy):
    listed = comfy.get_json("/workflow_templates")
    assert sorted(listed.get(PACK, [])) == sorted(_stems()), listed
    for stem in _stems():
        quoted = urllib.parse.quote(stem)
        status, _, body = _get(comfy, f"/api/workflow_templates/{PACK}/{quoted}.json")
        assert status == 200 and json.loads(body) == load(WORKFLOWS / f"{stem}.json"), stem
        status, kind, body = _get(comfy, f"/api/workflow_templates/{PACK}/{quoted}.jpg")
        assert status == 200 and body[:3] == b"\xff\xd8\xff", (stem, kind)


# ---------------------------------------------------------------------- open in the frontend
def _comparable(graph: dict):
    nodes = {}
    for n in graph["nodes"]:
        nodes[n["id"]] = (
            n["type"], n.get("widgets_values"),
            [(i["name"], i["type"], i.get("link")) for i in n.get("inputs") or []],
            [(o["name"], o["type"], sorted(o.get("links") or [])) for o in n.get("outputs") or []],
        )
    return nodes, sorted(map(tuple, graph["links"]))


def _load_problems(result) -> list[str]:
    problems = []
    if result["unknown"]:
        problems.append(f"node types unknown to the frontend: {result['unknown']}")
    for text in result["texts"] + result["alerts"]:
        if "missing nodes" in text.lower() or "zod" in text.lower() or "invalid workflow" in text.lower():
            problems.append(text.strip()[:500])
    return problems


@pytest.mark.parametrize("stem", _stems())
def test_workflow_opens_and_saves_back_unchanged(frontend, stem):
    workflow = load(WORKFLOWS / f"{stem}.json")
    types = {n["type"] for n in workflow["nodes"]}
    missing = types - frontend.registered()
    assert not missing, f"not in LiteGraph.registered_node_types: {sorted(missing)}"
    result = frontend.load(workflow)
    assert not _load_problems(result), _load_problems(result)
    saved_nodes, saved_links = _comparable(result["graph"])
    file_nodes, file_links = _comparable(workflow)
    assert saved_links == file_links
    for nid, node in file_nodes.items():
        assert saved_nodes.get(nid) == node, f"node {nid}: the frontend saves {saved_nodes.get(nid)}, the file has {node}"
    assert set(saved_nodes) == set(file_nodes)


def test_unknown_node_type_is_caught(frontend):
    """The open check bites: a node type nobody registered is reported (and the dialog shows)."""
    broken = copy.deepcopy(load(WORKFLOWS / f"{_stems()[0]}.json"))
    victim = next(n for n in broken["nodes"] if n["type"].startswith("LatentPainter"))
    victim["type"] = "LatentPainterNoSuchNode"
    result = frontend.load(broken)
    problems = _load_problems(result)
    assert any("LatentPainterNoSuchNode" in p for p in problems), problems
    assert any("missing nodes" in p.lower() for p in problems), result["texts"]


# ---------------------------------------------------------------------- run from the frontend
def _for_test(workflow: dict, checkpoints: dict[str, str], overrides: dict | None = None) -> dict:
    """A copy with test checkpoints (first loader's name -> A, others -> B), test sizes, and chain
    stages of at most one schedule each with just enough steps that every stage paints one."""
    specs = load_specs()
    wf = copy.deepcopy(workflow)
    names = []
    stages = sum(n["type"] in ("LatentPainterStrokes", "LatentPainterAction") for n in wf["nodes"])
    steps = max(4, stages + 1)  # every stage of a chain gets a schedule, the last one the rest
    for node in wf["nodes"]:
        spec = specs[node["type"]]

        def put(key, value, node=node, spec=spec):
            node["widgets_values"][spec.widgets.index(key)] = value

        if node["type"] == "CheckpointLoaderSimple":
            name = node["widgets_values"][0]
            if name not in names:
                names.append(name)
            put("ckpt_name", checkpoints["A"] if names.index(name) == 0 else checkpoints["B"])
            node["properties"].pop("models", None)
        if node["type"] == "UNETLoader":
            put("unet_name", checkpoints["unet"])
        if node["type"] == "CLIPLoader":
            put("clip_name", checkpoints["clip"])
            put("type", checkpoints["clip_type"])
        if node["type"] == "VAELoader" and node["widgets_values"][0] not in TAESD_OPTIONS:
            put("vae_name", checkpoints["vae"])
        for key, value in {**TEST_WIDGETS.get(node["type"], {}), **(overrides or {}).get(node["type"], {})}.items():
            put(key, value)
        if node["type"] in ("LatentPainterSampler", "BasicScheduler", "KSampler"):
            put("steps", steps)
        if node["type"] in ("LatentPainterStrokes", "LatentPainterAction"):
            current = node["widgets_values"][spec.widgets.index("schedules")]
            put("schedules", min(current, 1))
    return wf


def _outputs(comfy, history: dict) -> list[Path]:
    """The non-empty files the prompt wrote."""
    return [f for f in comfy.output_files(history) if f.is_file() and f.stat().st_size > 0]


def _put_pictures(comfy, workflow: dict) -> None:
    """A real photo (test size) in the host's input folder under each name a Load Image asks for: a
    fresh host has none (a user's ComfyUI ships example.png, which the templates name)."""
    from PIL import Image

    from latent_painter.painter.render.writers import to_uint8
    from latent_painter.painter.tools.demo import load_photos

    for node in workflow["nodes"]:
        if node["type"] == "LoadImage":
            photo = to_uint8(load_photos(["coffee"], PICTURE_SIZE)[0]).numpy()
            Image.fromarray(photo).save(comfy.input_dir / node["widgets_values"][0])


def _run(frontend, comfy, workflow: dict) -> tuple[dict, float]:
    _put_pictures(comfy, workflow)
    result = frontend.load(workflow)
    assert not _load_problems(result), _load_problems(result)
    t0 = time.monotonic()
    history = comfy.wait(frontend.queue())
    return history, time.monotonic() - t0


def _check_outputs(comfy, workflow: dict, history: dict) -> None:
    files = _outputs(comfy, history)
    for node in workflow["nodes"]:
        suffix = OUTPUT_SUFFIX.get(node["type"])
        if node["type"] == "LatentPainterRender":
            suffix = "." + node["widgets_values"][load_specs()[node["type"]].widgets.index("format")]
        if suffix:
            assert any(f.suffix == suffix for f in files), (node["type"], files, history.get("outputs"))
    for f in files:
        if f.suffix == ".webp":
            assert f.read_bytes()[8:12] == b"WEBP", f
        if f.suffix == ".mp4":
            assert b"ftyp" in f.read_bytes()[:16], f


@pytest.fixture(scope="module")
def saved_plan(frontend, comfy, models) -> str:
    """Runs 'Save a plan' from the frontend; returns the new plan as Load Plan lists it."""
    before = set((comfy.output_dir / "lp_frontend_test").glob("plan_*.safetensors"))
    workflow = _for_test(load(WORKFLOWS / f"{SAVE_PLAN}.json"), models)
    history, seconds = _run(frontend, comfy, workflow)
    _check_outputs(comfy, workflow, history)
    new = sorted(set((comfy.output_dir / "lp_frontend_test").glob("plan_*.safetensors")) - before)
    assert len(new) == 1, (new, history.get("outputs"))
    RUNS[SAVE_PLAN] = {"seconds": round(seconds, 1), "decode": []}
    print(f"\n{SAVE_PLAN}: {seconds:.1f} s")
    return f"{TEST_PLAN_PREFIX.split('/')[0]}/{new[0].name} [output]"


def _decode_reports(frontend, workflow: dict, history: dict, stem: str) -> list[str]:
    """Every Decode Frames / Render node decodes with 'auto' as saved and says which way it decoded in
    its UI text: in the server's history and in the outputs the frontend received for that node."""
    specs = load_specs()
    received = frontend.received_texts([n["id"] for n in workflow["nodes"] if n["type"] in DECODE_NODES])
    reports = []
    for node in workflow["nodes"]:
        if node["type"] not in DECODE_NODES:
            continue
        mode = node["widgets_values"][specs[node["type"]].widgets.index("decode")]
        assert mode == "auto", f"{stem}: node {node['id']} decodes with {mode!r}"
        texts = history["outputs"][str(node["id"])].get("text") or []
        assert len(texts) >= 1, (node["type"], history["outputs"][str(node["id"])])
        shown = [o.get("text") for key, o in received.items() if str(key).split(":")[-1] == str(node["id"])]
        assert texts in shown, (
            f"{stem}: the frontend did not receive node {node['id']}'s UI text {texts}: {shown}")
        for text in texts:
            name = "Render" if node["type"] == "LatentPainterRender" else "Decode Frames"
            assert text.startswith(f"{name}: decoded "), text
            path = text[len(f"{name}: decoded "):].split(":", 1)[0]
            assert path in ("full", "staged"), text
            wanted = EXPECTED_PATH.get(stem)
            assert wanted is None or path == wanted, f"{stem}: auto decoded {path!r}, expected {wanted!r}: {text}"
            reports.append(text)
    return reports


def _run_template(frontend, comfy, models, stem: str, overrides: dict | None = None) -> None:
    workflow = _for_test(load(WORKFLOWS / f"{stem}.json"), models, {**STEM_OVERRIDES.get(stem, {}), **(overrides or {})})
    history, seconds = _run(frontend, comfy, workflow)
    _check_outputs(comfy, workflow, history)
    reports = _decode_reports(frontend, workflow, history, stem)
    RUNS[stem] = {"seconds": round(seconds, 1), "decode": reports}
    print(f"\n{stem}: {seconds:.1f} s; " + (" | ".join(reports) or "no frames decoded"))
    out = os.environ.get("LATENT_PAINTER_FRONTEND_RUNS")
    if out:
        Path(out).write_text(json.dumps(RUNS, indent=1), encoding="utf-8")


@pytest.mark.parametrize("stem", _stems(exclude=(SAVE_PLAN, LOAD_PLAN, DIFFUSION_MODEL)))
def test_workflow_runs_from_the_frontend(frontend, comfy, models, stem):
    _run_template(frontend, comfy, models, stem)


def test_plan_saved_from_the_frontend_loads_and_paints(frontend, comfy, models, saved_plan):
    _run_template(frontend, comfy, models, LOAD_PLAN, {"LatentPainterLoadPlan": {"plan": saved_plan}})


# ---------------------------------------------------------------------- the diffusion-model shape, per family
TINY_NODES = ("LatentPainterTestTinyModel", "LatentPainterTestConditioning")  # tests/host/latent_painter_test_nodes.py


def _test_node(node: dict, node_type: str, widgets: dict) -> None:
    """Turn a UI-format node into one of the test-only nodes (widgets only, sockets dropped)."""
    node["type"] = node_type
    node["properties"] = {"Node name for S&R": node_type}
    node["widgets_values"] = list(widgets.values())
    node["inputs"] = [{"localized_name": k, "name": k, "type": "COMBO" if isinstance(v, str) else "INT",
                       "widget": {"name": k}, "link": None} for k, v in widgets.items()]


def _with_tiny_model(workflow: dict, family: str, vae_name: str) -> dict:
    """The diffusion-model template with a model no file can give at test size (Qwen-Image): Load
    Diffusion Model becomes the test node that builds the tiny model, the two prompts become seeded
    text features of its width, Load CLIP goes (nothing else reads it); Load VAE loads ``vae_name``.
    Everything downstream (Capture, KSampler, Get Plan, Canvas, Paint, Render) is the template's."""
    wf = copy.deepcopy(workflow)
    clip_ids = {n["id"] for n in wf["nodes"] if n["type"] == "CLIPLoader"}
    dropped = {lk[0] for lk in wf["links"] if lk[1] in clip_ids}
    wf["links"] = [lk for lk in wf["links"] if lk[0] not in dropped]
    wf["nodes"] = [n for n in wf["nodes"] if n["id"] not in clip_ids]
    for node in wf["nodes"]:
        if node["type"] == "UNETLoader":
            _test_node(node, "LatentPainterTestTinyModel", {"family": family, "seed": 27})
        elif node["type"] == "CLIPTextEncode":
            _test_node(node, "LatentPainterTestConditioning", {"width": 256, "tokens": 8, "seed": node["id"]})
        elif node["type"] == "VAELoader":
            node["widgets_values"][0] = vae_name
    return wf


@pytest.mark.parametrize("family", ["sd3", "qwen_image"])
def test_diffusion_model_template_per_family(request, frontend, comfy, models, family):
    """The diffusion-model template with each family's tiny model: SD3 (4-D latents) through the
    template's own loaders; Qwen-Image ([B,16,1,H,W] latents, Wan 2.1 VAE) through the test-only
    model node when the test server has it (helpers 26a/26b), skipped otherwise."""
    if family == "sd3":
        _run_template(frontend, comfy, models, DIFFUSION_MODEL)
        return
    if not set(TINY_NODES) <= frontend.registered():
        pytest.skip("the test server has no tiny Qwen-Image model node (tests/host/latent_painter_test_nodes.py)")
    vaes = request.getfixturevalue("family_vaes")
    workflow = _with_tiny_model(_for_test(load(WORKFLOWS / f"{DIFFUSION_MODEL}.json"), models), family,
                                vaes["wan21_vae"])
    history, seconds = _run(frontend, comfy, workflow)
    _check_outputs(comfy, workflow, history)
    reports = _decode_reports(frontend, workflow, history, DIFFUSION_MODEL)
    RUNS[f"{DIFFUSION_MODEL} ({family})"] = {"seconds": round(seconds, 1), "decode": reports}
    print(f"\n{DIFFUSION_MODEL} ({family}): {seconds:.1f} s; " + " | ".join(reports))


# ---------------------------------------------------------------------- help pages
HELP_NODE = "LatentPainterPaint"
HELP_SCREENSHOT = Path(os.environ.get("LATENT_PAINTER_HELP_SCREENSHOT", "/tmp/latent_painter_help_panel.png"))


def test_every_node_help_page_is_served(comfy):
    """GET /extensions/<pack folder>/docs/<NodeId>.md answers 200 with the page for every node (the
    frontend's second try after docs/<NodeId>/<locale>.md), and every picture a page shows is served."""
    import re

    from latent_painter.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    info = comfy.object_info()
    served = {}
    for node_id in NODE_CLASS_MAPPINGS:
        # the frontend derives the pack folder from python_module: custom_nodes.<folder>
        assert info[node_id]["python_module"] == f"custom_nodes.{PACK}", info[node_id]["python_module"]
        status, kind, body = _get(comfy, f"/extensions/{PACK}/docs/{node_id}.md")
        text = body.decode("utf-8")
        assert status == 200 and "text/html" not in kind, (node_id, status, kind)
        assert text.splitlines()[0] == f"# {NODE_DISPLAY_NAME_MAPPINGS[node_id]}", text[:200]
        assert text == (WORKFLOWS.parent / "web" / "docs" / f"{node_id}.md").read_text(encoding="utf-8")
        for picture in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
            status, _, data = _get(comfy, f"/extensions/{PACK}/docs/{picture}")
            assert status == 200 and data[:3] == b"\xff\xd8\xff", (node_id, picture, status)
        served[node_id] = status
    print("\n" + "\n".join(f"GET /extensions/{PACK}/docs/{k}.md -> {v}" for k, v in served.items()))


def test_help_panel_shows_the_page(frontend):
    """Select a node, press the selection toolbox's info button: the side panel renders our page
    (its heading, the generated node-id line, its picture loaded); a screenshot is kept."""
    from latent_painter.nodes import NODE_DISPLAY_NAME_MAPPINGS

    frontend.load(load(WORKFLOWS / "Paint an image.json"))
    frontend.close_dialogs()
    page = frontend.page
    page.evaluate("""(type) => { const n = app.graph._nodes.find(n => n.type === type);
                                 app.canvas.selectNode(n); app.canvas.setDirty(true, true); }""", HELP_NODE)
    page.locator('[data-testid="info-button"]').click()
    content = page.locator(".node-help-content")
    heading = content.locator("h1").first
    heading.wait_for(timeout=60_000)
    assert heading.inner_text().strip() == NODE_DISPLAY_NAME_MAPPINGS[HELP_NODE]
    page.wait_for_function("""() => { const c = document.querySelector('.node-help-content');
        return c && c.innerText.includes('Node id') &&
               Array.from(c.querySelectorAll('img')).every(i => i.complete); }""", timeout=30_000)
    assert f"Node id {HELP_NODE}" in content.inner_text()
    pictures = page.evaluate("() => Array.from(document.querySelectorAll('.node-help-content img'))"
                             ".map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert all(width > 0 for _, width in pictures), pictures
    HELP_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(HELP_SCREENSHOT))
    if pictures:  # and the panel scrolled to the page's picture
        content.locator("img").first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        page.screenshot(path=str(HELP_SCREENSHOT.with_name(HELP_SCREENSHOT.stem + "_picture.png")))
    print(f"\nhelp panel of {HELP_NODE}: heading {heading.inner_text()!r}, pictures {pictures}; screenshot {HELP_SCREENSHOT}")


# ---------------------------------------------------------------------- fixture writer
def write_core_nodes() -> int:
    """Start a host, read /object_info, keep the core node types the workflows use."""
    import tempfile

    from comfy_host import ComfyHost, comfy_path

    from latent_painter.nodes import NODE_CLASS_MAPPINGS

    path = comfy_path()
    if path is None:
        print("set COMFYUI_PATH to a ComfyUI checkout")
        return 2
    used = {n["type"] for p in workflow_paths() for n in load(p)["nodes"]}
    used = (used - set(NODE_CLASS_MAPPINGS) - FRONTEND_ONLY) | {"KSamplerSelect", "BasicScheduler"}
    with tempfile.TemporaryDirectory() as scratch, ComfyHost(path, Path(scratch)) as host:
        info = host.object_info()
    CORE_NODES.parent.mkdir(parents=True, exist_ok=True)
    CORE_NODES.write_text(json.dumps(trim_object_info(info, used), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {CORE_NODES} ({len(used)} node types)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:] == ["--write-core-nodes"]:
        sys.exit(write_core_nodes())
    print(__doc__)
    sys.exit(2)
