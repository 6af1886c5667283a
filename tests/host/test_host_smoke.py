"""Smoke tests against a real ComfyUI: the pack loads, its nodes register, a core graph runs.

Run: COMFYUI_PATH=/path/to/ComfyUI python -m pytest tests/host -q
"""

from __future__ import annotations

import re

from comfy_host import PACK_DIR_NAME, pack_node_keys, png_info, txt2img_prompt

PACK_MODULE = f"custom_nodes.{PACK_DIR_NAME}"


def _import_lines(log: str) -> list[str]:
    """The lines of ComfyUI's 'Import times for custom nodes' report."""
    lines = log.splitlines()
    out = []
    for i, line in enumerate(lines):
        if "Import times for custom nodes" in line:
            for nxt in lines[i + 1:]:
                if not re.search(r"\d+\.\d seconds", nxt):
                    break
                out.append(nxt)
    return out


def test_pack_imports_without_errors(comfy):
    log = comfy.log_text()
    ours = [ln for ln in _import_lines(log) if ln.rstrip().endswith("/custom_nodes/" + PACK_DIR_NAME)]
    assert ours, "the pack is not in ComfyUI's custom node import report:\n" + comfy.log_tail()
    assert all("IMPORT FAILED" not in ln for ln in ours), "\n".join(ours) + "\n" + log
    bad = [ln for ln in log.splitlines()
           if PACK_DIR_NAME in ln and ("Cannot import" in ln or "IMPORT FAILED" in ln
                                        or "Skip " in ln)]
    assert not bad, "\n".join(bad) + "\n---\n" + log


def test_every_mapped_node_is_registered_from_the_pack(comfy):
    keys = pack_node_keys(comfy)
    info = comfy.object_info()
    missing = [k for k in keys if k not in info]
    assert not missing, f"in NODE_CLASS_MAPPINGS but not in /object_info: {missing}"
    # A key that collides with a core node is silently dropped by ComfyUI: the core one stays.
    foreign = {k: info[k].get("python_module") for k in keys if info[k].get("python_module") != PACK_MODULE}
    assert not foreign, f"served by another module than {PACK_MODULE}: {foreign}"
    # ... and nothing claims to be ours that the mapping does not export.
    extra = sorted(k for k, v in info.items() if v.get("python_module") == PACK_MODULE and k not in keys)
    assert not extra, f"registered from the pack but not in NODE_CLASS_MAPPINGS: {extra}"
    for k in keys:
        node = info[k]
        assert node.get("category", "").startswith("latent painter"), (k, node.get("category"))


def test_core_txt2img_runs_over_http(comfy, checkpoint_a):
    hist = comfy.queue(txt2img_prompt(checkpoint_a, seed=7, steps=4, prefix="lp_smoke"))
    files = comfy.output_files(hist, "images")
    assert len(files) == 1, hist.get("outputs")
    assert files[0].is_file(), files[0]
    width, height, pixels = png_info(files[0])
    assert (width, height) == (64, 64)
    assert len(pixels) == height * (1 + width * 3)  # 8-bit RGB scanlines, one filter byte each


def test_second_checkpoint_loads_and_differs(comfy, checkpoint_a, checkpoint_b):
    assert checkpoint_a != checkpoint_b
    outs = []
    for ckpt in (checkpoint_a, checkpoint_b):
        hist = comfy.queue(txt2img_prompt(ckpt, seed=7, steps=2, prefix="lp_smoke_ab"))
        (png,) = comfy.output_files(hist, "images")
        outs.append(png_info(png)[2])
    assert outs[0] != outs[1], "two checkpoints with different random weights gave the same image"
