"""The Latent Painter engine: pure torch, no ComfyUI import, device-agnostic."""
