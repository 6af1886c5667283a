"""What serves the pack outside ComfyUI: the demo, the analytic stand-in diffusion model, the pack's
own TAESD, the lookup of its weights, and the metrics benchmarks and tests measure with.

Tools may import the engine and the renderer; the engine and the renderer never import tools.
"""
