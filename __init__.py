"""Latent Painter for ComfyUI: the pack's entry point (node mappings only)."""

# ComfyUI (and the installed package ``latent_painter``) import this file as a package. pytest
# imports it on its own as module ``__init__`` when the checkout's folder name is not a Python
# identifier (e.g. a worktree called ``wt-12``); the relative import cannot work then, and the
# tests import the pack as ``latent_painter`` anyway.
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
