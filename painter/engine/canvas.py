"""Canvases to paint on: encoded flat images (white paper, black, the final image's mean colour,
any colour) and the default canvas of a painting.

Why an encoded image and not the all-zero latent: the zero latent is no colour at all to a
decoder. It decodes to a flat grey-brown in SD's space and to the decoder's 8-pixel grid and a
halftone texture in FLUX.2's (ARCHITECTURE.md "Targets", look), and a stroke that lets the plan through
onto it leaves half-painted latent pixels that show that texture until late in the animation.
A flat image encoded by the model's own VAE is a latent the decoder knows: it decodes to the
flat colour, and strokes on it get the decoder's own soft edges, as paint on paper.

The functions take the VAE as plain callables, so they work with any ComfyUI VAE (including
TAESD) and with :class:`painter.taesd.TinyAutoencoder`:

- ``encode(images [1,H,W,3] in 0..1) -> latents [1,C,h,w]``
- ``decode(latents [1,C,h,w]) -> images [1,H,W,3] in 0..1``
"""

from __future__ import annotations

import re
from typing import Callable

import torch

from .limits import LIMITS
from .plan import check_latent

CANVAS_KINDS = ("white", "black", "flat", "colour")
# The author paints on pure white: never-painted areas of the white-canvas demos are 255.
PAPER_WHITE = (1.0, 1.0, 1.0)
BLACK = (0.0, 0.0, 0.0)

Encoder = Callable[[torch.Tensor], torch.Tensor]
Decoder = Callable[[torch.Tensor], torch.Tensor]

_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def parse_colour(text) -> tuple[float, float, float]:
    """``"#RRGGBB"`` (or ``"#RGB"``, the ``#`` optional, any case) -> (r, g, b) in 0..1."""
    match = _HEX.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a colour; write it as #RRGGBB hex, e.g. #FFFFFF for white or #F4EFE4 for cream paper"
        )
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return tuple(int(digits[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


def on_paper(images):
    """Decoded images ``[..., 3]`` as they are; RGBA ``[..., 4]`` composited onto white paper (the colour
    never-painted paper shows): ``rgb * alpha + (1 - alpha)``, alpha clamped to 0..1. VAEs that decode to
    RGBA (Qwen-Image 2.1's and its TAESD) then paint and render like any other. Anything else, and
    what is not a tensor, passes unchanged for the caller's own check to name."""
    if not isinstance(images, torch.Tensor) or images.dim() < 1 or images.shape[-1] != 4:
        return images
    rgb, alpha = images[..., :3], images[..., 3:].clamp(0.0, 1.0)
    paper = torch.tensor(PAPER_WHITE, dtype=images.dtype, device=images.device)
    return rgb * alpha + paper * (1 - alpha)


def mean_colour(decode: Decoder, final: torch.Tensor) -> tuple[float, float, float]:
    """The mean RGB of ``final`` [C,h,w] decoded: the colour of the finished image as a whole."""
    final = check_latent(final, "final latent", dims=3)
    with torch.no_grad():
        image = decode(final[None].contiguous())
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1 or image.shape[-1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(
            f"the VAE decoded the final latent to {shape}, not one image [1,H,W,3]; connect the image VAE "
            "of the model that made the plan"
        )
    rgb = image.to(torch.float32).mean(dim=(0, 1, 2)).clamp(0.0, 1.0)
    return tuple(float(v) for v in rgb)


def flat_canvas(
    encode: Encoder,
    colour: tuple[float, float, float],
    latent_shape: tuple[int, int, int],
    scale: int = 8,
    *,
    device=None,
) -> torch.Tensor:
    """The latent [C,h,w] of a flat ``colour`` image, encoded at the size that makes ``latent_shape``.

    The whole image is encoded (not a tile repeated): encoders pad at the borders, and the
    decoder undoes exactly what its own encoder did there. ``scale`` is the VAE's pixels per
    latent pixel (8 for SD, SDXL, SD3, Flux.1 and TAESD; 16 for ComfyUI's packed FLUX.2 latents).
    """
    channels, height, width = (int(v) for v in latent_shape)
    if len(colour) != 3 or not all(LIMITS["colour component"].admits(float(v)) for v in colour):
        raise ValueError(f"colour must be three numbers in 0..1, got {colour!r}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"the VAE's scale must be a whole number of pixels per latent pixel, got {scale!r}")
    pixels = torch.tensor(colour, dtype=torch.float32).view(1, 1, 1, 3).expand(1, height * scale, width * scale, 3)
    with torch.no_grad():
        latent = encode(pixels.contiguous())
    if not isinstance(latent, torch.Tensor):
        raise ValueError(f"the VAE's encode returned {type(latent).__name__}, not a latent tensor")
    if latent.dim() != 4 or tuple(latent.shape) != (1, channels, height, width):
        raise ValueError(
            f"the VAE encodes a {height * scale}x{width * scale} image to latents of shape "
            f"{tuple(latent.shape)}, but the plan's latents are [1,{channels},{height},{width}]; connect the VAE of "
            "the model that made the plan (same latent channels and scale)"
        )
    latent = latent[0].to(device=device, dtype=torch.float32)
    return check_latent(latent, "encoded canvas", dims=3)


def make_canvas(
    kind: str,
    final: torch.Tensor,
    encode: Encoder,
    decode: Decoder | None = None,
    *,
    colour: tuple[float, float, float] | None = None,
    scale: int = 8,
) -> torch.Tensor:
    """A canvas latent [C,h,w] for a plan whose final latent is ``final`` [C,h,w].

    kind: ``white`` (paper), ``black``, ``flat`` (the final image's mean colour; needs
    ``decode``) or ``colour`` (``colour``, r, g, b in 0..1).
    """
    final = check_latent(final, "final latent", dims=3)
    if kind == "white":
        rgb = PAPER_WHITE
    elif kind == "black":
        rgb = BLACK
    elif kind == "flat":
        if decode is None:
            raise ValueError("kind 'flat' needs a decoder to find the final image's mean colour")
        rgb = mean_colour(decode, final)
    elif kind == "colour":
        if colour is None:
            raise ValueError("kind 'colour' needs a colour")
        rgb = colour
    else:
        raise ValueError(f"kind {kind!r} is unknown; use one of {', '.join(CANVAS_KINDS)}")
    return flat_canvas(encode, rgb, tuple(final.shape), scale, device=final.device)


def default_canvas(
    final: torch.Tensor,
    encode: Encoder | None = None,
    decode: Decoder | None = None,
    *,
    scale: int = 8,
) -> torch.Tensor:
    """The canvas a painting starts from when none is given.

    With a VAE (``encode`` and ``decode``): the final image's mean colour, encoded. It decodes
    to a flat colour on every latent family (the zero latent shows the decoder's grid and
    texture on some), and it is the canvas that is closest, on average, to every part of the
    finished image, so no stroke has to cover a large jump from a foreign colour.
    Without one: the all-zero latent, the empty canvas of the paper (and of earlier versions).
    """
    final = check_latent(final, "final latent", dims=3)
    if encode is None or decode is None:
        return torch.zeros_like(final)
    return make_canvas("flat", final, encode, decode, scale=scale)


__all__ = [
    "BLACK",
    "CANVAS_KINDS",
    "PAPER_WHITE",
    "default_canvas",
    "flat_canvas",
    "make_canvas",
    "mean_colour",
    "on_paper",
    "parse_colour",
]
