"""Test-only ComfyUI nodes for the host tests (never part of the pack).

``comfy_host.ComfyHost`` links this file into the scratch ``custom_nodes`` folder next to the pack, so
a test prompt can load models that no weights file can give a tiny version of (see
``make_checkpoint.TINY_MODELS``) and text conditioning of any width without a multi-GB text encoder.
Everything is built from ComfyUI's own classes with seeded random weights; nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # make_checkpoint, beside the real file

import make_checkpoint  # noqa: E402


class LatentPainterTestTinyModel:
    CATEGORY = "latent painter tests"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"family": (sorted(make_checkpoint.TINY_MODELS),),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}

    def build(self, family, seed):
        return (make_checkpoint.tiny_model(family, seed),)


class LatentPainterTestConditioning:
    CATEGORY = "latent painter tests"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": make_checkpoint.TINY_CONTEXT, "min": 1, "max": 8192}),
                             "tokens": ("INT", {"default": 8, "min": 1, "max": 512}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}

    def build(self, width, tokens, seed):
        return (make_checkpoint.tiny_conditioning(width, tokens, seed),)


NODE_CLASS_MAPPINGS = {"LatentPainterTestTinyModel": LatentPainterTestTinyModel,
                       "LatentPainterTestConditioning": LatentPainterTestConditioning}
