"""Every latent format of the real ComfyUI (``comfy.latent_formats``) with preview factors gets them in
the pack, and they show what ComfyUI's own preview shows (skipped without COMFYUI_PATH).

With the host's Python: for each image or video format (``latent_dimensions`` 2 or 3), random
LATENT-space latents in the format's shape (``[1,C,6,5]`` or ``[1,C,1,6,5]``) go through ComfyUI's
``Latent2RGBPreviewer`` (process_in first, as the sampler's x0 is; its final clamp to an image is
left out) and through the pack's factors (``nodes.host.latent_space_rgb``, one colour per latent
pixel). They must agree, ComfyUI's image averaged over the block each latent pixel becomes (2x2 for
Flux.2's reshape). A format whose factors the pack cannot carry over is listed and must be one whose
``process_in`` changes the latent's shape (then the pack fits factors to the connected VAE)."""

from __future__ import annotations

from comfy_host import run_host_script

SCRIPT = r'''
import inspect, json
import torch
import comfy.latent_formats as formats
import latent_preview

latent_preview.preview_to_image = lambda image, do_scale=True: image  # the linear preview, before its clamp
from latent_painter.nodes import host
from latent_painter.painter.engine.projection import project_rgb

rows = {}
for name, cls in inspect.getmembers(formats, inspect.isclass):
    if not issubclass(cls, formats.LatentFormat) or cls.latent_dimensions not in (2, 3):
        continue
    fmt = cls()
    channels = int(fmt.latent_channels)
    if fmt.latent_rgb_factors is None:
        rows[name] = {"channels": channels, "comfy": False}
        continue
    shape = (1, channels, 1, 6, 5) if cls.latent_dimensions == 3 else (1, channels, 6, 5)
    latents = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    x0 = fmt.process_in(latents)
    row = {"channels": channels, "comfy": True, "shape_kept": tuple(x0.shape) == shape}
    factors, bias = host.latent_space_rgb(fmt, channels)
    row["carried"] = factors is not None
    if factors is not None:
        previewer = latent_preview.Latent2RGBPreviewer(fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias,
                                                       fmt.latent_rgb_factors_reshape)
        comfy = previewer.decode_latent_to_preview(x0).float()  # [s*6, s*5, 3]
        block = comfy.shape[0] // 6
        pooled = torch.nn.functional.avg_pool2d(comfy.permute(2, 0, 1)[None], block)[0].permute(1, 2, 0)
        ours = project_rgb(latents.reshape(1, channels, 6, 5), factors, bias)[0]
        row["block"] = block
        row["max_difference"] = float((ours - pooled).abs().max())
        row["scale"] = float(pooled.abs().max())
    rows[name] = row
print(json.dumps(rows, indent=1))
Path(out).write_text(json.dumps(rows))
'''


def test_every_format_s_preview_factors_are_carried_and_agree_with_comfyui(tmp_path):
    rows = run_host_script(SCRIPT, tmp_path / "formats.json")
    for name, row in sorted(rows.items()):
        print(name, row)
    for name in ("SD15", "SDXL", "SD3", "Flux", "Flux2", "Wan21", "Wan22", "HunyuanImage21", "ChromaRadiance"):
        assert rows[name]["comfy"] and rows[name]["carried"], (name, rows[name])
    assert rows["Flux2"]["block"] == 2 and rows["Flux2"]["channels"] == 128
    for name, row in rows.items():
        if row["comfy"] and row["carried"]:
            assert row["max_difference"] <= 1e-4 * max(1.0, row["scale"]), (name, row)
        elif row["comfy"]:
            assert not row["shape_kept"], (name, row)  # only a process_in that reshapes goes without
