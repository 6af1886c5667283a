"""The painting engine of *Latent Painter* (S. Su, arXiv 2308.16490): the latent is the canvas, the
diffusion model's predicted originals are the plan.

It owns everything between a plan and painted latents: the plan and its file, the capture of sampling
runs, canvases, information gain and the painter's choices, the stages of a chain (strokes, reveal
actions), the events of a painting and the frames drawn from them, pacing, transitions and
interpolation, and the limits every input is checked against. It imports torch and the standard
library only: never the renderer, the tools or ComfyUI. A VAE reaches it as plain ``encode`` /
``decode`` callables.
"""
