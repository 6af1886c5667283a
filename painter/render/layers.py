"""A decoder's ``nn.Sequential`` as the staged strategy's layers, with the reach of each measured
from its modules and verified by probing.

The TAESD family's decoders (ComfyUI's ``comfy.taesd.taesd.Decoder``, and any file of that layout)
are a sequence of 3x3 convolutions, activations, residual blocks of convolutions and nearest
upsamplings. A layer's *reach* (the input pixels on each side that an output pixel depends on) is
what lets a crop be decoded exactly; it is read off the modules: a convolution reaches half its
kernel, an upsampling has a scale, an activation reaches nothing, and a module of other modules
(a residual block) at most the sum of its convolutions' reaches. A module whose kind is not known
is run on a probe (one input pixel changed) and refused when its change spreads wider than that
sum or its output has another size; a norm or attention inside a layer marks it as reading the whole
frame. Nothing here imports ComfyUI: the modules are plain ``torch.nn`` modules.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .staged import Layer

# Reads the whole frame: statistics or attention over all positions.
GLOBAL_MODULES = (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.MultiheadAttention)
# Elementwise: an output pixel depends on its own input pixel only.
ELEMENTWISE = (nn.ReLU, nn.SiLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Identity, nn.Dropout, nn.BatchNorm2d)


def _conv_reach(conv: nn.Conv2d) -> int | str:
    if tuple(conv.stride) != (1, 1):
        return f"{conv} is strided, which no decoder layer here is"
    reach = [d * (k - 1) // 2 for d, k in zip(conv.dilation, conv.kernel_size)]
    padding = conv.padding if isinstance(conv.padding, tuple) else (conv.padding,) * 2
    if conv.padding != "same" and list(padding) != reach:
        return f"{conv} does not keep the size of its input"
    return max(reach)


def _describe(module: nn.Module) -> tuple[int, int, bool] | str:
    """``(scale, reach, whole)`` of one child of the sequence, or why it cannot be cropped."""
    if isinstance(module, nn.Conv2d):
        reach = _conv_reach(module)
        return reach if isinstance(reach, str) else (1, reach, False)
    if isinstance(module, nn.Upsample):
        factor = module.scale_factor
        if module.mode != "nearest" or factor is None or float(factor) != int(factor):
            return f"{module} is not a whole-number nearest upsampling"
        return int(factor), 0, False
    if isinstance(module, ELEMENTWISE):
        return 1, 0, False
    if isinstance(module, GLOBAL_MODULES):
        return 1, 0, True
    inner = list(module.modules())[1:]
    if any(isinstance(m, nn.Upsample) for m in inner):
        return f"{type(module).__name__} upsamples inside, which this split does not follow"
    reaches = [_conv_reach(m) for m in inner if isinstance(m, nn.Conv2d)]
    bad = [r for r in reaches if isinstance(r, str)]
    if bad:
        return bad[0]
    return 1, sum(reaches), any(isinstance(m, GLOBAL_MODULES) for m in inner)


def _channels_in(module: nn.Module, previous: int) -> int:
    first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else previous


def _channels_out(module: nn.Module, previous: int) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels if convs else previous


def probe_reach(module: nn.Module, channels: int, reach: int) -> int | None:
    """How far (in input pixels) changing one input pixel moves the output of ``module``, measured on a
    random input ``reach + 3`` pixels around; None when the output is not the input's size."""
    side = 2 * reach + 7
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else "cpu"
    dtype = parameter.dtype if parameter is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, side, side, generator=generator).to(device, dtype)
    moved = x.clone()
    moved[:, :, side // 2, side // 2] += 1.0
    with torch.no_grad():
        a, b = module(x), module(moved)
    if a.shape[-2:] != x.shape[-2:]:
        return None
    rows, cols = torch.nonzero((a - b).abs().amax(dim=(0, 1)) > 0, as_tuple=True)
    if rows.numel() == 0:
        return 0
    return int(max((rows - side // 2).abs().max(), (cols - side // 2).abs().max()))


def layers_of(sequence: nn.Sequential, latent_channels: int, *, before: Callable | None = None,
              after: Callable | None = None) -> tuple[Layer, ...] | str:
    """``sequence`` (a decoder's modules in order, reading ``latent_channels`` channels) as layers, with
    ``before`` (latents -> the first module's input) and ``after`` (the last module's output -> IMAGE)
    as layers of their own; or why it cannot be split."""
    layers = [Layer(before)] if before is not None else []
    channels = latent_channels
    for module in sequence:
        described = _describe(module)
        if isinstance(described, str):
            return described
        scale, reach, whole = described
        known = isinstance(module, (nn.Conv2d, nn.Upsample, *ELEMENTWISE, *GLOBAL_MODULES))
        if not known and not whole:
            measured = probe_reach(module, _channels_in(module, channels), reach)
            if measured is None or measured > reach:
                return (f"{type(module).__name__} changes more than its convolutions reach (probed "
                        f"{measured} px, expected at most {reach})")
        layers.append(Layer(module, scale=scale, reach=reach, whole=whole))
        channels = _channels_out(module, channels)
    if after is not None:
        layers.append(Layer(after))
    return tuple(layers)


__all__ = ["layers_of", "probe_reach"]
