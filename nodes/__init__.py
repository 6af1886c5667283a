"""ComfyUI glue: one module per node family; every host import is lazy (through ``nodes/host.py``).

Each family module lists its node classes in ``NODES``; a class's name is its node id (public: it
is written into saved workflows, never rename it) and ``DISPLAY_NAME`` its title in the UI.
"""

from . import canvas, capture, frames, paint, painters, plans, render, sampling, transition

# Families in menu order.
FAMILIES = (capture, sampling, plans, painters, canvas, paint, transition, frames, render)

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

for _family in FAMILIES:
    for _node in _family.NODES:
        if _node.__name__ in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"Latent Painter: node id {_node.__name__} is defined twice")
        NODE_CLASS_MAPPINGS[_node.__name__] = _node
        NODE_DISPLAY_NAME_MAPPINGS[_node.__name__] = _node.DISPLAY_NAME

del _family, _node

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
