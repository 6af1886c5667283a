"""Latent Painter for ComfyUI: the pack's entry point (node mappings, and the web folder that serves
each node's help page, web/docs/<NodeId>.md, to the frontend's node help panel)."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

# Served at /extensions/<pack folder>/ whatever the install folder is called (a [tool.comfy] web
# entry would register it under the project's name, which matches only one folder name).
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
