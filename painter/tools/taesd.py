"""A Tiny AutoEncoder (TAESD family) written over plain tensors: load the real weights, encode, decode.

TAESD (github.com/madebyollin/taesd, MIT) is a small distilled encoder/decoder pair that speaks
the latent language of a diffusion model's VAE at a fraction of its cost. This module is our own
functional implementation of its 8x layout; it reads the published ``.pth``/``.safetensors`` files
as they are, so the same files that ComfyUI keeps in ``models/vae_approx`` work here.

Latent space. Latents produced and consumed here are in **TAESD's native space**: the space the
weights were distilled in, with images in ``[0, 1]`` and TAESD's ``scale_factor`` equal to 1.
For ``taesd``/``taesdxl`` (4 channels) that is the model-scaled SD latent; for ``taef2`` it is
the 32-channel, 8x FLUX.2 VAE latent *before* the 2x2 patchify that makes ComfyUI's 128-channel
Flux.2 LATENT (see :func:`pack_2x2`; :meth:`TinyAutoencoder.decode` also accepts packed latents).

Architecture, as inferred from the weights (block ``i.conv.{0,2,4}`` is three 3x3 convolutions
with ReLUs between, added to its input and passed through a ReLU):

- encoder: conv(3->64), block, then three times [stride-2 conv, 3 blocks], then conv(64->C);
- decoder: soft clamp ``3 tanh(x/3)``, conv(C->64), ReLU, then three times [3 blocks,
  nearest 2x upsample, conv], then a block and conv(64->3).

``taef2`` adds a ``pool`` branch to the blocks at the lowest resolution (encoder blocks 11-13,
decoder blocks 3-5): 1x1 conv 64->256 (no bias), GroupNorm(4 groups, 256), ReLU, 1x1 conv 256->64
(no bias), added to the block input before the block runs. The group norm takes its statistics
over the whole image, which is how these blocks see global context (FLUX.2's VAE needed it to be
distilled accurately), so unlike classic TAESD a taef2 decode is not local: decode whole latents,
not tiles, when you want it to match.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange

from ..render.staged import Layer
from ..render.strategies import DecoderView
from .taesd_files import (
    DECODER_LAYOUT,
    DOWNLOAD_HINT,
    ENCODER_LAYOUT,
    WEIGHT_SUFFIXES,
    WIDTH,
    TaesdError,
    check_state_dict,
    read_state_dict,
)

SCALE = 8
# Group count of the taef2 pool branch's GroupNorm; eps is torch's default, which the weights were trained with.
POOL_GROUPS = 4
POOL_EPS = 1e-5
# One memory layout for every call: convolution kernels differ per layout in the last bits, and
# the same latent must decode to the same image however it was sliced or packed. Channels-last
# measured 15-25% faster than NCHW on CPU (oneDNN) at 128-512 px.
MEMORY_FORMAT = torch.channels_last


def _conv(x: torch.Tensor, weights: dict[str, torch.Tensor], name: str, stride: int = 1) -> torch.Tensor:
    weight = weights[f"{name}.weight"]
    return F.conv2d(x, weight, weights.get(f"{name}.bias"), stride=stride, padding=weight.shape[-1] // 2)


def _block(x: torch.Tensor, weights: dict[str, torch.Tensor], index: int) -> torch.Tensor:
    if f"{index}.pool.0.weight" in weights:
        pooled = _conv(x, weights, f"{index}.pool.0")
        weight, bias = weights[f"{index}.pool.1.weight"], weights[f"{index}.pool.1.bias"]
        pooled = F.group_norm(pooled, POOL_GROUPS, weight, bias, POOL_EPS)
        x = x + _conv(F.relu(pooled), weights, f"{index}.pool.3")
    y = F.relu(_conv(x, weights, f"{index}.conv.0"))
    y = F.relu(_conv(y, weights, f"{index}.conv.2"))
    return F.relu(_conv(y, weights, f"{index}.conv.4") + x)


def _run(
    layout: tuple[str, ...], weights: dict[str, torch.Tensor], x: torch.Tensor, start: int = 0, stop: int | None = None
) -> torch.Tensor:
    """Run ``layout[start:stop]`` (weights keep their positions in the whole layout)."""
    for index, kind in enumerate(layout[start:stop], start):
        if kind == "conv":
            x = _conv(x, weights, str(index))
        elif kind == "down":
            x = _conv(x, weights, str(index), stride=2)
        elif kind == "block":
            x = _block(x, weights, index)
        elif kind == "up":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif kind == "relu":
            x = F.relu(x)
        elif kind == "clamp":
            # A soft clamp to +-3: latents far outside the training range cannot blow up the decode.
            x = torch.tanh(x / 3.0) * 3.0
    return x


def pack_2x2(latents: torch.Tensor) -> torch.Tensor:
    """``[N,C,2h,2w] -> [N,4C,h,w]``: the 2x2 patchify ComfyUI applies to taef2 latents for Flux.2.

    Pixel ``(2y + dy, 2x + dx)`` of channel ``c`` goes to channel ``4c + 2dy + dx`` at ``(y, x)``.
    """
    h, w = latents.shape[-2:]
    if h % 2 or w % 2:
        raise TaesdError(f"pack_2x2: latent size {h}x{w} must be even; crop the latent by one row/column")
    return rearrange(latents, "n c (y dy) (x dx) -> n (c dy dx) y x", dy=2, dx=2)


def unpack_2x2(latents: torch.Tensor) -> torch.Tensor:
    """``[N,4C,h,w] -> [N,C,2h,2w]``, the inverse of :func:`pack_2x2`."""
    if latents.shape[1] % 4:
        raise TaesdError(f"unpack_2x2: {latents.shape[1]} channels is not a multiple of 4")
    return rearrange(latents, "n (c dy dx) y x -> n c (y dy) (x dx)", dy=2, dx=2)


@dataclass(frozen=True, eq=False)
class TinyAutoencoder:
    """A loaded TAESD encoder and/or decoder (float32 weights on one device).

    ``encode(images [N,H,W,3] in 0..1) -> latents [N,C,H/8,W/8]`` and ``decode(latents) -> images
    [N,8h,8w,3]`` clamped to 0..1: the ``decode(samples) -> IMAGE`` interface of a ComfyUI VAE.
    Latents are in TAESD's native space (see the module docstring). Results are returned on the
    input's device; the arithmetic runs in float32 on the weights' device.
    """

    encoder_weights: dict[str, torch.Tensor] | None
    decoder_weights: dict[str, torch.Tensor] | None
    latent_channels: int
    name: str = "taesd"
    # True for taef2-style weights (global group-norm branches at the lowest resolution).
    midblock_norm: bool = False

    scale = SCALE

    @property
    def device(self) -> torch.device:
        weights = self.encoder_weights or self.decoder_weights
        return next(iter(weights.values())).device

    @property
    def packed_channels(self) -> int | None:
        """Channels of ComfyUI's 2x2-packed latents for this space (taef2: 128), or None when it packs nothing."""
        return 4 * self.latent_channels if self.midblock_norm else None

    @classmethod
    def from_files(cls, encoder_path=None, decoder_path=None, device="cpu", name: str | None = None) -> "TinyAutoencoder":
        """Load an encoder and/or a decoder file (``.pth`` via ``torch.load(weights_only=True)``, or ``.safetensors``)."""
        if encoder_path is None and decoder_path is None:
            raise TaesdError(f"TAESD: give an encoder file, a decoder file or both; {DOWNLOAD_HINT}")
        loaded = {}
        for part, path in (("encoder", encoder_path), ("decoder", decoder_path)):
            if path is None:
                continue
            path = os.fspath(path)
            loaded[part] = check_state_dict(read_state_dict(path, part), part, path) + (path,)
        if len(loaded) == 2:
            (_, c_enc, n_enc, p_enc), (_, c_dec, n_dec, p_dec) = loaded["encoder"], loaded["decoder"]
            if (c_enc, n_enc) != (c_dec, n_dec):
                raise TaesdError(
                    f"TAESD: encoder {p_enc!r} ({c_enc} channels{', pooled' if n_enc else ''}) and decoder {p_dec!r} "
                    f"({c_dec} channels{', pooled' if n_dec else ''}) belong to different latent spaces; use a matching pair"
                )
        _, channels, pooled, first_path = next(iter(loaded.values()))
        if name is None:
            name = _name_from_path(first_path, channels, pooled)
        return cls(
            encoder_weights=_to_device(loaded.get("encoder"), device),
            decoder_weights=_to_device(loaded.get("decoder"), device),
            latent_channels=channels,
            name=name,
            midblock_norm=pooled,
        )

    @classmethod
    def from_folder(cls, folder, name: str = "taef2", device="cpu") -> "TinyAutoencoder":
        """Load ``<name>_encoder`` and ``<name>_decoder`` (``.pth``/``.pt``/``.safetensors``) from ``folder``.

        Either may be absent (ComfyUI's ``vae_approx`` often holds decoders only), not both.
        """
        folder = os.fspath(folder)
        found = {}
        for part in ("encoder", "decoder"):
            for suffix in WEIGHT_SUFFIXES:
                candidate = os.path.join(folder, f"{name}_{part}{suffix}")
                if os.path.isfile(candidate):
                    found[part] = candidate
                    break
        if not found:
            raise TaesdError(
                f"TAESD: no {name}_encoder / {name}_decoder file ({'/'.join(WEIGHT_SUFFIXES)}) "
                f"in {folder!r}; {DOWNLOAD_HINT}"
            )
        return cls.from_files(found.get("encoder"), found.get("decoder"), device=device, name=name)

    def to(self, device) -> "TinyAutoencoder":
        return replace(
            self,
            encoder_weights=_move(self.encoder_weights, device),
            decoder_weights=_move(self.decoder_weights, device),
        )

    def encode(self, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``[N,H,W,3]`` images in 0..1 (H, W multiples of 8) -> ``[N,C,H/8,W/8]`` latents in TAESD's native space.

        ``batch_size`` bounds how many images run at once (activations are ~0.3 GB per 512 px image).
        """
        if self.encoder_weights is None:
            raise TaesdError(
                f"TAESD {self.name}: no encoder loaded; put {self.name}_encoder.pth beside the decoder or pass encoder_path"
            )
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise TaesdError(f"TAESD encode: images must be an IMAGE tensor [N,H,W,3], got {shape}")
        height, width = images.shape[1:3]
        if height % SCALE or width % SCALE or height == 0 or width == 0:
            raise TaesdError(
                f"TAESD encode: image size {height}x{width} must be a positive multiple of {SCALE}; crop or resize it"
            )
        def encode_chunk(chunk: torch.Tensor) -> torch.Tensor:
            x = chunk.to(self.device, torch.float32).permute(0, 3, 1, 2).contiguous(memory_format=MEMORY_FORMAT)
            return _run(ENCODER_LAYOUT, self.encoder_weights, x).contiguous()

        shape = (images.shape[0], self.latent_channels, height // SCALE, width // SCALE)
        return _chunked(encode_chunk, images, shape, batch_size)

    def decode(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``[N,C,h,w]`` latents -> ``[N,8h,8w,3]`` images clamped to 0..1.

        For taef2, ComfyUI's 2x2-packed Flux.2 latents ``[N,4C,h,w]`` are accepted too and decode
        to ``[N,16h,16w,3]``. ``batch_size`` bounds how many latents run at once.
        """
        latents = self._decoder_input(latents, "decode")

        def decode_chunk(chunk: torch.Tensor) -> torch.Tensor:
            x = chunk.to(self.device, torch.float32).contiguous(memory_format=MEMORY_FORMAT)
            return _run(DECODER_LAYOUT, self.decoder_weights, x).clamp_(0.0, 1.0).permute(0, 2, 3, 1)

        n, _, h, w = latents.shape
        return _chunked(decode_chunk, latents, (n, SCALE * h, SCALE * w, 3), batch_size)

    def _decoder_input(self, latents, method: str) -> torch.Tensor:
        """Check latents for the decoder; ComfyUI's 2x2-packed taef2 latents are unpacked."""
        if self.decoder_weights is None:
            raise TaesdError(
                f"TAESD {self.name}: no decoder loaded; put {self.name}_decoder.pth beside the encoder or pass decoder_path"
            )
        if not isinstance(latents, torch.Tensor) or latents.dim() != 4:
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise TaesdError(f"TAESD {method}: latents must be [N,C,h,w], got {shape}")
        channels = latents.shape[1]
        if channels == self.packed_channels:
            return unpack_2x2(latents)
        if channels != self.latent_channels:
            raise TaesdError(
                f"TAESD {method}: {channels}-channel latents, but {self.name} decodes {self.latent_channels} channels; "
                "pick the TAESD file that matches the model's latent space"
            )
        return latents

    def decoder_view(self) -> DecoderView:
        """The decoder as the renderer sees it: ``decode`` and its layers, one per entry of the
        layout (3x3 convolutions reach 1 pixel, blocks 3, upsamplings double; taef2's blocks with a
        group-norm branch read the whole frame), then the clamp to an IMAGE. The layers chained are
        :meth:`decode`, bit for bit (tests/test_taesd.py), so the staged strategy trusts them."""
        if self.decoder_weights is None:
            raise TaesdError(
                f"TAESD {self.name}: no decoder loaded; put {self.name}_decoder.pth beside the encoder or pass decoder_path"
            )
        reach = {"conv": 1, "block": 3}
        layers = [Layer(self._latent_input)]
        for index, kind in enumerate(DECODER_LAYOUT):
            pooled = f"{index}.pool.0.weight" in self.decoder_weights
            layers.append(Layer(partial(self._decoder_layer, index), scale=2 if kind == "up" else 1,
                                reach=reach.get(kind, 0), whole=pooled))
        layers.append(Layer(_image))
        return DecoderView(decode=self.decode, name=self.name, layers=tuple(layers), exact=True)

    def _latent_input(self, latents: torch.Tensor) -> torch.Tensor:
        latents = self._decoder_input(latents, "decode")
        return latents.to(self.device, torch.float32).contiguous(memory_format=MEMORY_FORMAT)

    def _decoder_layer(self, index: int, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=MEMORY_FORMAT)
        return _run(DECODER_LAYOUT, self.decoder_weights, x, start=index, stop=index + 1)


def _image(x: torch.Tensor) -> torch.Tensor:
    """The decoder's output as an IMAGE, as :meth:`TinyAutoencoder.decode` makes it."""
    return x.clamp(0.0, 1.0).permute(0, 2, 3, 1)


def _chunked(run, inputs: torch.Tensor, shape: tuple[int, ...], batch_size: int | None) -> torch.Tensor:
    """Apply ``run`` to ``inputs`` in chunks of ``batch_size`` along dim 0, into one output on the inputs' device."""
    if batch_size is not None and batch_size < 1:
        raise TaesdError(f"TAESD: batch_size must be at least 1, got {batch_size}")
    total = inputs.shape[0]
    step = total if batch_size is None else batch_size
    with torch.inference_mode():
        if step >= total:
            return run(inputs).to(inputs.device).contiguous()
        # Preallocate so a long batch never holds two full copies of its output.
        out = torch.empty(shape, dtype=torch.float32, device=inputs.device)
        for start in range(0, total, step):
            out[start : start + step] = run(inputs[start : start + step])
        return out


def _to_device(entry, device) -> dict[str, torch.Tensor] | None:
    return None if entry is None else _move(entry[0], device)


def _move(weights: dict[str, torch.Tensor] | None, device) -> dict[str, torch.Tensor] | None:
    if weights is None:
        return None
    return {key: value.to(device) for key, value in weights.items()}


def _name_from_path(path: str, channels: int, pooled: bool) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    for suffix in ("_encoder", "_decoder"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    # Weights alone cannot tell taesd from taesdxl or taesd3 from taef1; name by what they can tell.
    return "taef2" if pooled and channels == 32 else f"taesd-{channels}ch"


__all__ = ["TaesdError", "TinyAutoencoder", "pack_2x2", "unpack_2x2"]
