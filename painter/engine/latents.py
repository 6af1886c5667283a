"""The host's latent shapes: image latents with or without a time axis of one, and the decoders and
encoders that take them in the shape each VAE expects.

The rule is the latent's shape, never a family's name. ComfyUI hands image latents over as
``[B,C,H,W]``; image models whose VAE is a video VAE (the ``Wan21`` format: Qwen-Image, Cosmos
Predict2 text-to-image, Wan with length 1) as ``[B,C,1,H,W]``: ComfyUI's sampler adds the time axis
to a 4-D empty latent, and the Wan VAE encodes an image to one latent frame. Both are images. The
painter paints ``[B,C,H,W]``: a time axis of one is taken off where a latent comes in
(:func:`image_latents`), recorded in the plan's latent format (``LatentFormat.time_axis``), and put
back on every latent handed out (:func:`host_latents`), so the last frame is the sampler's output in
the sampler's own shape. A time axis of more than one is a video and refused with one message
(:func:`video_message`).

A VAE's decode and encode are adapted once (:func:`image_decoder`, :func:`image_encoder`): a video VAE
gets its time axis of one and hands back one image per latent; an RGBA decoder's alpha is composited
onto the paper (:func:`canvas.on_paper`).
"""

from __future__ import annotations

from typing import Callable

import torch

from .canvas import on_paper


class VideoLatentError(ValueError):
    """A latent with more than one latent frame: a video, which is not painted."""


def video_message(shape) -> str:
    """The one refusal of a video latent ``[B,C,T,H,W]`` with T > 1, naming its shape and T."""
    shape = tuple(int(n) for n in shape)
    frames = shape[2]
    return (f"this is a video latent of shape {shape} [B,C,T,H,W] with {frames} latent frames; Latent Painter paints "
            "single-frame latents only ([B,C,H,W], or [B,C,1,H,W] as Qwen-Image and other Wan-VAE image models give "
            "them): sample one latent frame (for Wan, a video length of 1) or use an image model")


def frames_of(shape) -> int:
    """The number of latent frames of a latent of ``shape``: T of ``[B,C,T,H,W]``, 1 for ``[B,C,H,W]``."""
    return int(shape[2]) if len(shape) == 5 else 1


def image_latents(samples: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``(samples as [B,C,H,W], whether it came with a time axis of one)``; a view, never a copy.
    ``[B,C,T,H,W]`` with T > 1 is a :class:`VideoLatentError`; other shapes pass unchanged."""
    if samples.dim() != 5:
        return samples, False
    if samples.shape[2] != 1:
        raise VideoLatentError(video_message(samples.shape))
    return samples[:, :, 0], True


def host_latents(latents: torch.Tensor, time_axis: bool) -> torch.Tensor:
    """``latents [N,C,H,W]`` in the host's shape: ``[N,C,1,H,W]`` when its latents carry a time axis (a view)."""
    return latents.unsqueeze(2) if time_axis else latents


def image_decoder(decode: Callable, time_axis: bool = False) -> Callable:
    """``decode(latents [n,C,h,w]) -> [n,H,W,3]`` for a VAE's ``decode``: a video VAE (``time_axis``) is
    handed ``[n,C,1,h,w]`` and its ``[n,1,H,W,c]`` comes back as ``[n,H,W,c]``; RGBA goes onto the paper."""

    def decoded(latents: torch.Tensor) -> torch.Tensor:
        images = decode(host_latents(latents, time_axis))
        if isinstance(images, torch.Tensor) and images.dim() == 5 and images.shape[0] * images.shape[1] == \
                latents.shape[0]:
            images = images.reshape(-1, *images.shape[2:])
        return on_paper(images)

    decoded.__qualname__ = getattr(decode, "__qualname__", "decode")
    return decoded


def image_encoder(encode: Callable) -> Callable:
    """``encode(images [1,H,W,3]) -> [1,C,h,w]`` for a VAE's ``encode``: a video VAE's one latent frame
    ``[1,C,1,h,w]`` comes back without its time axis (a video of more frames is refused)."""

    def encoded(images: torch.Tensor) -> torch.Tensor:
        latent = encode(images)
        if isinstance(latent, torch.Tensor):
            latent, _ = image_latents(latent)
        return latent

    return encoded


__all__ = ["VideoLatentError", "frames_of", "host_latents", "image_decoder", "image_encoder", "image_latents",
           "video_message"]
