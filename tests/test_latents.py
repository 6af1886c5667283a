"""Latent shapes (painter/engine/latents.py): a time axis of one is an image, T > 1 is refused with one
message, a video VAE is handed the shape it expects, RGBA goes onto the paper; plans keep the time
axis across files, and plan files written before it existed still load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from latent_painter.painter.engine.canvas import PAPER_WHITE, on_paper
from latent_painter.painter.engine.latents import (
    VideoLatentError,
    frames_of,
    host_latents,
    image_decoder,
    image_encoder,
    image_latents,
    video_message,
)
from latent_painter.painter.engine.plan import PLAN_FILE_KIND, LatentFormat, load_plan, make_plan, save_plan


def test_a_time_axis_of_one_is_an_image_and_comes_back_as_a_view():
    samples = torch.randn(2, 16, 1, 5, 7)
    images, time_axis = image_latents(samples)
    assert time_axis and images.shape == (2, 16, 5, 7)
    assert images.data_ptr() == samples.data_ptr()  # a view, never a copy
    back = host_latents(images, time_axis)
    assert back.shape == samples.shape and torch.equal(back, samples)
    plain = torch.randn(3, 4, 6, 6)
    assert image_latents(plain) == (plain, False) and host_latents(plain, False) is plain
    assert (frames_of(samples.shape), frames_of(plain.shape), frames_of((1, 16, 2, 8, 8))) == (1, 1, 2)


def test_a_video_is_refused_with_its_shape_and_latent_frames():
    # Wan with length 5: (5 - 1) // 4 + 1 = 2 latent frames
    with pytest.raises(VideoLatentError) as refused:
        image_latents(torch.zeros(1, 16, 2, 60, 104))
    assert str(refused.value) == video_message((1, 16, 2, 60, 104)) == (
        "this is a video latent of shape (1, 16, 2, 60, 104) [B,C,T,H,W] with 2 latent frames; Latent Painter paints "
        "single-frame latents only ([B,C,H,W], or [B,C,1,H,W] as Qwen-Image and other Wan-VAE image models give "
        "them): sample one latent frame (for Wan, a video length of 1) or use an image model")
    assert isinstance(refused.value, ValueError)


def test_rgba_is_composited_onto_white_paper():
    rgb = torch.rand(2, 4, 5, 3)
    alpha = torch.rand(2, 4, 5, 1)
    out = on_paper(torch.cat([rgb, alpha], dim=-1))
    assert out.shape == (2, 4, 5, 3)
    assert torch.allclose(out, rgb * alpha + (1 - alpha), atol=1e-6)
    opaque = on_paper(torch.cat([rgb, torch.ones_like(alpha)], dim=-1))
    transparent = on_paper(torch.cat([rgb, torch.zeros_like(alpha)], dim=-1))
    assert torch.equal(opaque, rgb) and torch.equal(transparent, torch.tensor(PAPER_WHITE).expand_as(rgb))
    assert on_paper(rgb) is rgb  # RGB passes untouched


class WanLikeVAE:
    """Decodes [n,C,T,h,w] only (4-D crashes, as ComfyUI's Wan VAE does) to [n,T,2h,2w,channels]."""

    def __init__(self, channels=3):
        self.channels, self.seen = channels, []

    def decode(self, samples):
        if samples.dim() != 5:
            raise RuntimeError("Expected 5D input to conv3d")
        self.seen.append(tuple(samples.shape))
        return torch.sigmoid(samples[:, : self.channels]).permute(0, 2, 3, 4, 1).repeat_interleave(2, 2) \
            .repeat_interleave(2, 3)

    def encode(self, pixels):
        return pixels.movedim(-1, 1)[:, :, None, ::2, ::2]  # one latent frame


def test_a_video_vae_is_handed_a_time_axis_and_gives_one_image_per_latent():
    vae = WanLikeVAE()
    latents = torch.randn(3, 3, 4, 5)
    images = image_decoder(vae.decode, time_axis=True)(latents)
    assert vae.seen == [(3, 3, 1, 4, 5)] and images.shape == (3, 8, 10, 3)
    assert torch.equal(images[:, ::2, ::2], torch.sigmoid(latents).permute(0, 2, 3, 1))
    rgba = WanLikeVAE(channels=4)
    latents4 = torch.randn(2, 4, 4, 5)
    composited = image_decoder(rgba.decode, time_axis=True)(latents4)
    raw = torch.sigmoid(latents4).permute(0, 2, 3, 1).repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert torch.allclose(composited, raw[..., :3] * raw[..., 3:] + 1 - raw[..., 3:], atol=1e-6)
    encoded = image_encoder(vae.encode)(torch.rand(1, 8, 10, 3))
    assert encoded.shape == (1, 3, 4, 5)
    with pytest.raises(VideoLatentError, match="with 2 latent frames"):
        image_encoder(lambda pixels: torch.zeros(1, 16, 2, 4, 4))(torch.rand(1, 32, 32, 3))


def test_the_time_axis_survives_a_plan_file_and_old_files_load_without_it(tmp_path):
    fmt = LatentFormat(name="Wan21", channels=16, rgb_factors=tuple((0.1, 0.2, 0.3) for _ in range(16)),
                       rgb_bias=(0.0, 0.1, 0.2), time_axis=True)
    plan = make_plan(torch.randn(3, 16, 4, 4), latent_format=fmt)
    loaded = load_plan(save_plan(plan, tmp_path / "wan.safetensors"))
    assert loaded.latent_format == fmt and loaded.latent_format.time_axis
    # a file written before the time axis existed: its latent format JSON has no such key
    old = LatentFormat(name="SD15", channels=16).to_json()
    del old["time_axis"]
    with safe_open(str(tmp_path / "wan.safetensors"), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    save_file(tensors, str(tmp_path / "old.safetensors"),
              metadata={"kind": PLAN_FILE_KIND, "version": "1", "latent_format": json.dumps(old)})
    assert load_plan(tmp_path / "old.safetensors").latent_format.time_axis is False
    with pytest.raises(ValueError, match="time_axis must be true or false"):
        LatentFormat.from_json({**old, "time_axis": "yes"})


def test_the_renderer_paints_an_rgba_decoder_onto_the_paper():
    from latent_painter.painter.render.decoding import decode_frames

    def rgba(latents):  # [n,4,h,w] -> [n,2h,2w,4], the alpha from channel 3
        return torch.sigmoid(latents).permute(0, 2, 3, 1).repeat_interleave(2, 1).repeat_interleave(2, 2)

    latents = torch.randn(5, 4, 3, 4, generator=torch.Generator().manual_seed(3))
    images = decode_frames(rgba, latents, 2)
    raw = rgba(latents)
    assert images.shape == (5, 6, 8, 3)
    assert torch.allclose(images, raw[..., :3] * raw[..., 3:] + 1 - raw[..., 3:], atol=1e-6)
    with pytest.raises(ValueError, match=r"expected one RGB or RGBA image per latent \[4,H,W,3 or 4\]"):
        decode_frames(lambda x: rgba(x)[..., :2], latents, 5)
