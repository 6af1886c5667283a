"""Render inside a real ComfyUI, and its animated preview in the real frontend (skipped without
COMFYUI_PATH; the frontend part also without playwright/Chromium, see test_frontend.py).

A painting of a random SD1.5-layout checkpoint goes through Render to MP4 (handed on to core Save
Video through the VIDEO output) and to animated WEBP (white canvas, stroke map beside, ping-pong)
in one server prompt; the files are read back and no partial file is left. Then the example
workflow is run from the frontend and the Render nodes must show their files: the MP4 as a
playing ``<video>`` (the frontend's video preview widget), the WEBP as the node's animated image.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from comfy_host import webp_info

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_frontend import (  # noqa: E402,F401 - frontend and sync_api are fixtures
    WORKFLOWS,
    _for_test,
    _run,
    frontend,
    load,
    sync_api,
)

pytestmark = pytest.mark.slow

FRAMES = 12
HOLD_LAST = 2
RENDER_WORKFLOW = "Render a long painting to video"


def _render(frames_src, fmt: str, prefix: str, **over) -> dict:
    inputs = {"frames": frames_src, "vae": ["1", 2], "filename_prefix": prefix, "format": fmt, "fps": 8.0,
              "quality": 80, "hold_first": 0, "hold_last": HOLD_LAST, "pingpong": False, "white_canvas": False,
              "stroke_map_side_by_side": False, "chunk_size": 5}
    inputs.update(over)
    return {"class_type": "LatentPainterRender", "inputs": inputs}


def _painting_prompt() -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dawn", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "LatentPainterSampler", "inputs": {
            "model": ["1", 0], "seed": 3, "steps": 3, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "LatentPainterStrokes", "inputs": {
            "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
            "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}},
        "7": {"class_type": "LatentPainterPaint", "inputs": {
            "plan": ["5", 1], "painter": ["6", 0], "frames": FRAMES, "pacing": "change", "cleanup_frames": 3,
            "seed": 0, "vae": ["1", 2]}},
    }


def test_render_to_mp4_and_webp_in_the_real_server(comfy, checkpoint_a):
    prompt = _painting_prompt()
    prompt["1"]["inputs"]["ckpt_name"] = checkpoint_a
    prompt["8"] = _render(["7", 0], "mp4", "lp_render/painting")
    prompt["9"] = _render(["7", 0], "webp", "lp_render/white", white_canvas=True, stroke_map_side_by_side=True,
                          pingpong=True, stroke_map=["7", 1])
    prompt["10"] = {"class_type": "SaveVideo", "inputs": {
        "video": ["8", 0], "filename_prefix": "lp_render/handed_on", "format": "mp4", "codec": "h264"}}
    history = comfy.queue(prompt)
    outputs = history["outputs"]

    for node_id, suffix in (("8", ".mp4"), ("9", ".webp")):
        ui = outputs[node_id]
        assert ui["animated"] == [True] and len(ui["images"]) == 1, ui
        assert ui["images"][0]["filename"].endswith(suffix) and ui["images"][0]["subfolder"] == "lp_render", ui
    (mp4,) = comfy.output_files({"outputs": {"8": outputs["8"]}})
    (webp,) = comfy.output_files({"outputs": {"9": outputs["9"]}})
    (handed_on,) = comfy.output_files({"outputs": {"10": outputs["10"]}})

    played = FRAMES + HOLD_LAST
    assert comfy.video_frames(mp4) == played
    assert comfy.video_frames(handed_on) == played  # core Save Video read Render's VIDEO output
    frames, width, height, duration = webp_info(webp)
    assert (width, height) == (2 * 64, 64)  # the stroke map beside each frame
    assert duration == round(1000 * (played + FRAMES - 2) / 8.0)  # ping-pong: the way back without the turns
    assert 1 < frames <= played + FRAMES - 2
    left = [p.name for p in (comfy.output_dir / "lp_render").iterdir() if p.name.startswith(".")]
    assert not left, f"partial files left: {left}"


def _render_nodes(frontend) -> list[dict]:
    """What each Render node of the open graph shows: its format, the preview widgets and media."""
    return frontend.page.evaluate(
        """() => app.graph._nodes.filter(n => n.type === 'LatentPainterRender').map(n => {
            const format = n.widgets.find(w => w.name === 'format').value;
            const videos = Array.from(document.querySelectorAll('video')).map(v => ({
                src: v.currentSrc || v.src, width: v.videoWidth, duration: v.duration, loop: v.loop,
                error: v.error ? v.error.code : null}));
            const images = (n.imgs || []).map(i => ({src: i.src, width: i.naturalWidth, complete: i.complete}));
            return {id: n.id, format, animated: !!n.animatedImages, widgets: (n.widgets || []).map(w => w.name),
                    outputs: app.nodeOutputs[String(n.id)] || null, videos, images};
        })"""
    )


def test_frontend_shows_both_renders_animated(frontend, comfy, checkpoint_a, checkpoint_b):
    workflow = _for_test(load(WORKFLOWS / f"{RENDER_WORKFLOW}.json"), {"A": checkpoint_a, "B": checkpoint_b},
                         {"LatentPainterRender": {"hold_last": 2, "fps": 8.0}})
    history, seconds = _run(frontend, comfy, workflow)
    files = {Path(f).name for f in comfy.output_files(history)}
    assert any(f.endswith(".mp4") for f in files) and any(f.endswith(".webp") for f in files), files

    def shown():
        nodes = _render_nodes(frontend)
        ready = []
        for node in nodes:
            name = ((node["outputs"] or {}).get("images") or [{}])[0].get("filename", "")
            if node["format"] == "mp4":
                ready.append(any(name and name in v["src"] and v["width"] > 0 for v in node["videos"]))
            else:
                ready.append(node["animated"] and any(name and name in i["src"] and i["width"] > 0
                                                      for i in node["images"]))
        return nodes, ready

    nodes, ready = shown()
    for _ in range(40):  # the browser loads the media after the execution message
        if ready and all(ready):
            break
        frontend.page.wait_for_timeout(500)
        nodes, ready = shown()
    report = json.dumps(nodes, indent=1)[:4000]
    assert len(nodes) == 2 and all(ready), report
    mp4 = next(n for n in nodes if n["format"] == "mp4")
    webp = next(n for n in nodes if n["format"] == "webp")
    assert "video-preview" in mp4["widgets"], report
    assert mp4["outputs"]["animated"] == [True] and webp["outputs"]["animated"] == [True], report
    print(f"\n{RENDER_WORKFLOW}: {seconds:.1f} s; shown: {report[:600]}")


def test_incremental_render_with_the_kl_vae_is_its_full_render(comfy, checkpoint_a):
    """SD1.5's KL-VAE (global attention: the pack cannot split it) with decode=incremental decodes
    every frame in full, as the tooltip says: the lossless WEBP shows exactly the frames of
    decode=full (both one frame per VAE call), and the log says why no crops were made."""
    prompt = _painting_prompt()
    prompt["1"]["inputs"]["ckpt_name"] = checkpoint_a
    for node_id, decode in (("8", "incremental"), ("9", "full")):
        prompt[node_id] = _render(["7", 0], "webp", f"lp_render/kl_{decode}", quality=100, chunk_size=1,
                                  decode=decode)
    history = comfy.queue(prompt)
    incremental_file, full_file = (comfy.output_files({"outputs": {n: history["outputs"][n]}})[0] for n in ("8", "9"))
    shown = comfy.decoded_frames(incremental_file)
    assert len(shown) > 1 and shown == comfy.decoded_frames(full_file)
    log = comfy.log_text()
    assert ("Render: decoded full: " in log and "AutoencoderKL: staged: its structure is not known as layers"
            in log), comfy.log_tail()
