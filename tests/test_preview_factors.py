"""ComfyUI's preview factors carried onto the plan's LATENT space for formats that need a time axis
(Wan21/Wan22: per-channel mean/std viewed [1,C,1,1,1]) or a reshape (Flux.2: 128 channels unpacked
to 32 at twice the side), checked against what ComfyUI's Latent2RGB preview computes from the same
latents (latent_preview.py: reshape, then the factors on each pixel of the model-space x0)."""

from __future__ import annotations

import torch

from nodes_support import FakeModel, Flux2LikeFormat, WanLikeFormat

from latent_painter.nodes import host
from latent_painter.painter.engine.projection import project_rgb


def comfy_preview(fmt, x0):
    """Latent2RGBPreviewer's colours of model-space ``x0`` [B,C,...]: reshape, then factors per pixel."""
    if fmt.latent_rgb_factors_reshape is not None:
        x0 = fmt.latent_rgb_factors_reshape(x0)
    return torch.einsum("bc...,cr->b...r", x0, torch.tensor(fmt.latent_rgb_factors)) + torch.tensor(
        fmt.latent_rgb_factors_bias)


def test_flux2_factors_are_the_mean_colour_of_each_unpacked_block():
    fmt = Flux2LikeFormat()
    recorded = host.latent_format(FakeModel(fmt))
    assert recorded.channels == 128 and len(recorded.rgb_factors) == 128
    latents = torch.randn(2, 128, 6, 5, generator=torch.Generator().manual_seed(1))
    ours = project_rgb(latents, recorded.rgb_factors, recorded.rgb_bias)  # one colour per latent pixel [2,6,5,3]
    comfy = comfy_preview(fmt, latents)  # [2,12,10,3]: a 2x2 block per latent pixel
    blocks = torch.nn.functional.avg_pool2d(comfy.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    assert torch.allclose(ours, blocks, atol=1e-5)


def test_wan_factors_need_a_time_axis_and_get_one():
    fmt = WanLikeFormat()
    recorded = host.latent_format(FakeModel(fmt))
    assert recorded.time_axis and recorded.rgb_factors is not None
    latents = torch.randn(3, 16, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    comfy = comfy_preview(fmt, fmt.process_in(latents))[:, 0]  # x0 = process_in(LATENT)
    assert torch.allclose(project_rgb(latents[:, :, 0], recorded.rgb_factors, recorded.rgb_bias), comfy, atol=1e-5)
