"""The fast TAESD path (nodes/host.decoder_view: core TAESD's decoder layers called directly) loads the
VAE through ComfyUI's model management exactly as ``VAE.decode`` does before its decoder runs, checked
through the fake-host seam (host._host) with a recorder in place of ``comfy.model_management``.
tests/host/test_model_management_host.py makes the same comparison in the real ComfyUI."""

from __future__ import annotations

import torch

from nodes_support import CoreVAE, ModelManagement

from latent_painter.nodes import host


def test_the_fast_taesd_path_makes_the_loading_calls_of_vae_decode(monkeypatch):
    management = ModelManagement()
    real_host = host._host
    monkeypatch.setattr(host, "_host", lambda module: management if module == "comfy.model_management"
                        else real_host(module))
    vae = CoreVAE(management)
    view = host.decoder_view(vae)
    assert view.layers is not None  # the fast path: core TAESD's layers
    latents = torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(0))

    with torch.no_grad():
        expected = vae.decode(latents)
        decode_calls, management.calls = management.calls, []
        x = latents
        for layer in view.layers:
            x = layer.run(x)
    assert decode_calls and management.calls == decode_calls  # the same calls, same memory, same order
    assert management.calls[0][0] == (id(vae.patcher),)
    assert torch.allclose(x, expected, atol=1e-6)  # and the same images

    vae.disable_offload = True  # a VAE ComfyUI loads in full (force_full_load) is loaded in full here too
    with torch.no_grad():
        management.calls = []
        vae.decode(latents[:1])
        decode_calls, management.calls = management.calls, []
        view.layers[0].run(latents[:1])
    assert management.calls == decode_calls and decode_calls[0][2] is True
