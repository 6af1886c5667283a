"""ComfyUI glue: one module per node family; every host import is lazy."""

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
