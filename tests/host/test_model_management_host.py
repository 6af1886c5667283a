"""The fast TAESD path loads the VAE through ComfyUI's model management as ``VAE.decode`` does, in the
real ComfyUI 0.8.0 (skipped without COMFYUI_PATH).

With the host's Python, a core ``comfy.sd.VAE`` is built from a random ``comfy.taesd.taesd.TAESD``
state dict (no weights shipped or downloaded) and ``comfy.model_management.load_models_gpu`` is wrapped
in a recorder. The VAE is unloaded, decoded once with ``VAE.decode``, unloaded again, and decoded
through the pack's fast path (``nodes.host.decoder_view``: the decoder's layers called directly). Both
must make the same loading calls (models, memory_required, force_full_load), leave the VAE loaded on
its device in its dtype, and give the same image. The host-free twin is
tests/test_host_model_management.py."""

from __future__ import annotations

from comfy_host import run_host_script

SCRIPT = r'''
import json
import torch
import comfy.model_management as management
import comfy.sd
import comfy.taesd.taesd

torch.manual_seed(0)
taesd = comfy.taesd.taesd.TAESD(latent_channels=4)
with torch.no_grad():  # comfy.ops layers skip initialisation: give them random weights
    for parameter in taesd.parameters():
        parameter.normal_(0.0, 0.05)
state = {f"taesd_{part}.{key}": value for part in ("encoder", "decoder")
         for key, value in getattr(taesd, f"taesd_{part}").state_dict().items()}
vae = comfy.sd.VAE(sd=state)
calls = []
original = management.load_models_gpu

def recorder(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
             force_full_load=False):
    result = original(models, memory_required=memory_required, force_patch_weights=force_patch_weights,
                      minimum_memory_required=minimum_memory_required, force_full_load=force_full_load)
    weight = next(vae.first_stage_model.taesd_decoder.parameters())
    calls.append({"vae_patcher": [m is vae.patcher for m in models], "memory_required": memory_required,
                  "force_patch_weights": force_patch_weights, "minimum_memory_required": minimum_memory_required,
                  "force_full_load": force_full_load,
                  "loaded": any(loaded.model is vae.patcher for loaded in management.current_loaded_models),
                  "weights": [str(weight.device), str(weight.dtype)]})
    return result

management.load_models_gpu = recorder
from latent_painter.nodes import host

latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
runs = {}
with torch.no_grad():
    management.unload_all_models()
    calls.clear()
    expected = vae.decode(latents)
    runs["VAE.decode"] = list(calls)
    management.unload_all_models()
    calls.clear()
    view = host.decoder_view(vae)
    x = latents
    for layer in view.layers:
        x = layer.run(x)
    runs["fast path"] = list(calls)
print(json.dumps(runs, indent=1))
Path(out).write_text(json.dumps({"runs": runs, "fast_path": view.layers is not None,
                                 "max_difference": float((x - expected).abs().max()),
                                 "device": str(vae.device), "dtype": str(vae.vae_dtype)}))
'''


def test_the_fast_taesd_path_loads_the_vae_as_vae_decode_does(tmp_path):
    found = run_host_script(SCRIPT, tmp_path / "calls.json")
    decode, fast = found["runs"]["VAE.decode"], found["runs"]["fast path"]
    assert found["fast_path"] and decode, found
    assert fast == decode, found  # the same calls: models, memory_required, force_full_load, in order
    for call in fast:
        assert call["vae_patcher"] == [True] and call["loaded"], call
        assert call["weights"] == [found["device"], found["dtype"]], call  # on the VAE's device, in its dtype
    assert found["max_difference"] <= 1e-5, found
