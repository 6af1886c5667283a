"""The pack's engine rooms: pure torch, no ComfyUI import, device-agnostic (tensors follow their input).

- :mod:`.engine` paints: a plan and a painter chain in, painted latents and stroke maps out.
- :mod:`.render` turns painted latents into what a user watches: decoding, compositing, play order,
  files.
- :mod:`.tools` serve the pack outside ComfyUI: the demo, a stand-in diffusion model, the pack's own
  TAESD, the weights lookup, metrics.

Each room imports only the rooms before it in that list (tests/test_architecture.py checks it), and
none imports ``nodes`` (the ComfyUI glue) or ComfyUI itself.
"""
