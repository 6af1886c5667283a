"""Every node's declaration is something ComfyUI (0.8.0, V1 style) can show and call.

Walks NODE_CLASS_MAPPINGS: input types known, a tooltip on every input, widget defaults inside
their ranges, combos non-empty with the default listed, FUNCTION's parameters matching the
inputs, outputs/names/tooltips of one length, the category. Also: the pack imports, and its
host-free nodes declare themselves, with no ComfyUI module importable.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import latent_painter
from latent_painter.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, host
from latent_painter.painter.engine.plan import make_plan, save_plan

CORE_TYPES = {
    "MODEL", "CONDITIONING", "LATENT", "INT", "FLOAT", "STRING", "BOOLEAN", "IMAGE", "MASK", "VAE",
    "NOISE", "GUIDER", "SAMPLER", "SIGMAS", "VIDEO",
}  # fmt: skip
OUR_TYPES = {"LATENT_PLAN", "PAINTER", "STROKE_MAPS"}
WIDGETS = {"INT", "FLOAT", "STRING", "BOOLEAN"}
NODE_IDS = {
    "LatentPainterSampler", "LatentPainterSamplerCustom", "LatentPainterPlanFromLatents",
    "LatentPainterSavePlan", "LatentPainterLoadPlan", "LatentPainterStrokes", "LatentPainterAction",
    "LatentPainterPaint", "LatentPainterDecodeFrames", "LatentPainterAssembleFrames",
    "LatentPainterTransition", "LatentPainterInterpolate", "LatentPainterCapture", "LatentPainterGetPlan",
    "LatentPainterCanvas", "LatentPainterRender", "LatentPainterPlanFromImage",
}  # fmt: skip
HOST_MODULES = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "latent_preview", "node_helpers")


@pytest.fixture
def fake_host(monkeypatch, tmp_path):
    """The host lookups INPUT_TYPES needs, answered without ComfyUI (one plan in the input folder)."""
    inputs, outputs = tmp_path / "input", tmp_path / "output"
    inputs.mkdir()
    outputs.mkdir()
    save_plan(make_plan(torch.zeros(2, 4, 8, 8)), inputs / "example.safetensors")
    monkeypatch.setattr(host, "sampler_names", lambda: ["euler", "dpmpp_2m"])
    monkeypatch.setattr(host, "scheduler_names", lambda: ["normal", "karras"])
    monkeypatch.setattr(host, "input_directory", lambda: str(inputs))
    monkeypatch.setattr(host, "output_directory", lambda: str(outputs))


def test_node_ids_are_the_public_ones():
    assert set(NODE_CLASS_MAPPINGS) == NODE_IDS
    assert latent_painter.NODE_CLASS_MAPPINGS is NODE_CLASS_MAPPINGS
    assert set(NODE_DISPLAY_NAME_MAPPINGS) == set(NODE_CLASS_MAPPINGS)
    names = list(NODE_DISPLAY_NAME_MAPPINGS.values())
    assert len(set(names)) == len(names), "display names must be unique"
    for node_id, cls in NODE_CLASS_MAPPINGS.items():
        assert cls.__name__ == node_id
        assert NODE_DISPLAY_NAME_MAPPINGS[node_id] == cls.DISPLAY_NAME


def _check_input(node_id: str, name: str, spec) -> None:
    where = f"{node_id}.{name}"
    assert isinstance(spec, tuple) and len(spec) == 2, f"{where}: spec must be (type, options)"
    kind, options = spec
    assert isinstance(options, dict), where
    assert isinstance(options.get("tooltip"), str) and options["tooltip"].strip(), f"{where}: no tooltip"
    if isinstance(kind, list):
        assert kind, f"{where}: empty combo"
        assert all(isinstance(choice, str) for choice in kind), where
        assert len(set(kind)) == len(kind), f"{where}: duplicate choices"
        if "default" in options:
            assert options["default"] in kind, f"{where}: default not in the combo"
        return
    assert isinstance(kind, str) and kind in CORE_TYPES | OUR_TYPES, f"{where}: unknown type {kind!r}"
    if kind not in WIDGETS:
        assert "default" not in options, f"{where}: a socket has no default"
        return
    assert "default" in options, f"{where}: widget without default"
    default = options["default"]
    if kind == "BOOLEAN":
        assert isinstance(default, bool), where
    elif kind == "STRING":
        assert isinstance(default, str), where
    else:
        number = int if kind == "INT" else (int, float)
        assert isinstance(default, number) and not isinstance(default, bool), f"{where}: default {default!r}"
        for bound in ("min", "max", "step"):
            if bound in options:
                assert isinstance(options[bound], number), f"{where}: {bound}"
        assert "min" in options and "max" in options, f"{where}: give min and max"
        assert options["min"] <= default <= options["max"], f"{where}: default {default} outside [{options['min']}, {options['max']}]"
        if "step" in options:
            assert options["step"] > 0, where


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_declaration(node_id, fake_host):
    cls = NODE_CLASS_MAPPINGS[node_id]
    types = cls.INPUT_TYPES()
    assert set(types) <= {"required", "optional", "hidden"}, node_id
    assert types.get("required"), f"{node_id}: no required inputs"
    names = []
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            _check_input(node_id, name, spec)
            names.append(name)
    assert len(set(names)) == len(names), f"{node_id}: an input is declared twice"

    # FUNCTION takes exactly the inputs; optional ones default to None (unconnected sockets are omitted).
    function = getattr(cls, cls.FUNCTION)
    parameters = dict(inspect.signature(function).parameters)
    parameters.pop("self")
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters.values()), node_id
    assert set(parameters) == set(names) | set(types.get("hidden", {})), f"{node_id}: {sorted(parameters)} vs {sorted(names)}"
    for name in types.get("optional", {}):
        assert parameters[name].default is None, f"{node_id}.{name}: optional input must default to None"

    for hook in ("IS_CHANGED", "VALIDATE_INPUTS"):
        if hasattr(cls, hook):
            hook_parameters = set(inspect.signature(getattr(cls, hook)).parameters)
            assert hook_parameters <= set(names), f"{node_id}.{hook}"

    assert isinstance(cls.RETURN_TYPES, tuple)
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS), node_id
    assert all(kind in CORE_TYPES | OUR_TYPES for kind in cls.RETURN_TYPES), node_id
    assert all(isinstance(tip, str) and tip.strip() for tip in cls.OUTPUT_TOOLTIPS), node_id
    assert len(set(cls.RETURN_NAMES)) == len(cls.RETURN_NAMES), node_id
    assert cls.CATEGORY == "latent painter"
    assert isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 20
    assert bool(getattr(cls, "OUTPUT_NODE", False)) == (node_id in ("LatentPainterSavePlan", "LatentPainterRender"))
    if not cls.RETURN_TYPES:
        assert cls.OUTPUT_NODE, f"{node_id}: a node without outputs must be an output node"


def test_sampler_inputs_are_the_ksampler_inputs(fake_host):
    required = NODE_CLASS_MAPPINGS["LatentPainterSampler"].INPUT_TYPES()["required"]
    assert list(required) == [
        "model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise",
    ]  # fmt: skip
    assert required["seed"][1]["control_after_generate"] is True
    assert required["sampler_name"][0] == ["euler", "dpmpp_2m"]
    assert required["scheduler"][0] == ["normal", "karras"]
    custom = NODE_CLASS_MAPPINGS["LatentPainterSamplerCustom"].INPUT_TYPES()["required"]
    assert [(name, spec[0]) for name, spec in custom.items()] == [
        ("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"), ("latent_image", "LATENT"),
    ]  # fmt: skip


def test_load_plan_lists_plan_files(fake_host):
    assert NODE_CLASS_MAPPINGS["LatentPainterLoadPlan"].INPUT_TYPES()["required"]["plan"][0] == ["example.safetensors"]


def test_pack_imports_without_comfyui():
    """In a fresh interpreter where every ComfyUI module fails to import: the pack imports, registers
    every node, and the nodes that need no host lists declare themselves."""
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        BLOCKED = {HOST_MODULES!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked for the test: " + name)
                return None

        sys.meta_path.insert(0, Block())
        import latent_painter
        from latent_painter.nodes import host

        mappings = latent_painter.NODE_CLASS_MAPPINGS
        assert len(mappings) >= 10, sorted(mappings)
        needs_host = {{"LatentPainterSampler", "LatentPainterLoadPlan"}}
        for node_id, cls in mappings.items():
            if node_id not in needs_host:
                cls.INPUT_TYPES()
        try:
            host.sampler_names()
        except host.HostUnavailable as error:
            assert "inside ComfyUI" in str(error)
        else:
            raise AssertionError("host.sampler_names worked without ComfyUI")
        loaded = [name for name in sys.modules if name.split(".")[0] in BLOCKED]
        assert not loaded, loaded
        print("ok")
        """
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd="/", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
