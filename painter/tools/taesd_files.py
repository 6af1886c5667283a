"""Reading and checking TAESD weight files (github.com/madebyollin/taesd, MIT): ``.pth`` through
``torch.load(weights_only=True)`` or ``.safetensors``, as published or prefixed as ComfyUI and diffusers
combine them. A file that is not the TAESD part it should be is refused with what it is and the fix.
"""

from __future__ import annotations

import os

import torch

# Layer kinds by position in the published nn.Sequential state dicts. Positions without weights
# (clamp, relu, up) still count, so the keys line up with the files.
ENCODER_LAYOUT = (
    "conv", "block",
    "down", "block", "block", "block",
    "down", "block", "block", "block",
    "down", "block", "block", "block",
    "conv",
)  # fmt: skip
DECODER_LAYOUT = (
    "clamp", "conv", "relu",
    "block", "block", "block", "up", "conv",
    "block", "block", "block", "up", "conv",
    "block", "block", "block", "up", "conv",
    "block", "conv",
)  # fmt: skip
WIDTH = 64
WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")
# Combined or diffusers-style files prefix the same keys; strip the first prefix that matches.
KEY_PREFIXES = {
    "encoder": ("taesd_encoder.", "encoder.layers.", "encoder."),
    "decoder": ("taesd_decoder.", "decoder.layers.", "decoder."),
}
DOWNLOAD_HINT = (
    "download it from github.com/madebyollin/taesd (e.g. taef2_encoder.pth / taef2_decoder.pth) "
    "into ComfyUI/models/vae_approx"
)


class TaesdError(ValueError):
    """A TAESD weight file or input that cannot be used; the message names the file or input and the fix."""


def _expected_shapes(layout: tuple[str, ...], channels_in: int, channels_out: int) -> dict[str, tuple[int, ...]]:
    """Required keys (and shapes) of a layout; the first conv reads ``channels_in``, the last writes ``channels_out``."""
    convs = [i for i, kind in enumerate(layout) if kind in ("conv", "down")]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, kind in enumerate(layout):
        if kind in ("conv", "down"):
            n_in = channels_in if i == convs[0] else WIDTH
            n_out = channels_out if i == convs[-1] else WIDTH
            shapes[f"{i}.weight"] = (n_out, n_in, 3, 3)
        elif kind == "block":
            for j in (0, 2, 4):
                shapes[f"{i}.conv.{j}.weight"] = (WIDTH, WIDTH, 3, 3)
                shapes[f"{i}.conv.{j}.bias"] = (WIDTH,)
    return shapes


def _pool_shapes(index: int) -> dict[str, tuple[int, ...]]:
    hidden = 4 * WIDTH
    return {
        f"{index}.pool.0.weight": (hidden, WIDTH, 1, 1),
        f"{index}.pool.1.weight": (hidden,),
        f"{index}.pool.1.bias": (hidden,),
        f"{index}.pool.3.weight": (WIDTH, hidden, 1, 1),
    }


def read_state_dict(path: str, part: str) -> dict[str, torch.Tensor]:
    label = f"TAESD {part} file {path!r}"
    if not os.path.isfile(path):
        raise TaesdError(f"{label}: no such file; {DOWNLOAD_HINT}")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path, device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and safetensors each raise their own types
        raise TaesdError(
            f"{label}: unreadable as torch weights ({type(error).__name__}: {error}); "
            f"the file is damaged or not a weight file, {DOWNLOAD_HINT}"
        ) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TaesdError(f"{label}: holds no tensor state dict; {DOWNLOAD_HINT}")
    for prefix in KEY_PREFIXES[part]:
        if any(key.startswith(prefix) for key in state):
            state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            break
    return state


def check_state_dict(state: dict[str, torch.Tensor], part: str, path: str) -> tuple[dict[str, torch.Tensor], int, bool]:
    """Validate a TAESD encoder or decoder state dict.

    Returns the weights as float32, the latent channels and whether the blocks have pool branches.
    """
    label = f"TAESD {part} file {path!r}"
    layout = ENCODER_LAYOUT if part == "encoder" else DECODER_LAYOUT
    other = "decoder" if part == "encoder" else "encoder"
    # Say so plainly when the two files are swapped: the most likely mistake with a matched pair.
    looks_like_other = ("19.weight" in state) if part == "encoder" else ("0.weight" in state and "14.weight" in state)
    if looks_like_other:
        raise TaesdError(f"{label}: this is a TAESD {other}, not an {part}; pass it as the {other} file")
    first = state.get("0.weight" if part == "encoder" else "1.weight")
    if isinstance(first, torch.Tensor) and first.dim() == 4 and first.shape[0] != WIDTH and first.shape[1] in (3, 32):
        raise TaesdError(
            f"{label}: a TAESD with a different layout (e.g. the 32x taesana) is not supported; "
            "use an 8x TAESD (taesd, taesdxl, taesd3, taef1, taef2)"
        )
    if part == "encoder":
        last = f"{len(layout) - 1}.weight"
        if last not in state or state[last].dim() != 4:
            raise TaesdError(f"{label}: not a TAESD encoder (no {last!r}); {DOWNLOAD_HINT}")
        channels = state[last].shape[0]
        expected = _expected_shapes(layout, 3, channels)
    else:
        if "1.weight" not in state or state["1.weight"].dim() != 4:
            raise TaesdError(f"{label}: not a TAESD decoder (no '1.weight'); {DOWNLOAD_HINT}")
        channels = state["1.weight"].shape[1]
        expected = _expected_shapes(layout, channels, 3)
    blocks = [i for i, kind in enumerate(layout) if kind == "block"]
    pooled = [i for i in blocks if f"{i}.pool.0.weight" in state]
    for i in pooled:
        expected.update(_pool_shapes(i))
    # Biases of the first/last convs are present in every published file; the stride-2 and
    # post-upsample convs have none. Accept a bias on any conv so retrained variants still load.
    optional = {f"{i}.bias": (expected[f"{i}.weight"][0],) for i, kind in enumerate(layout) if kind in ("conv", "down")}
    missing = sorted(set(expected) - set(state), key=_key_order)
    if missing:
        raise TaesdError(
            f"{label}: not a TAESD {part} ({len(missing)} missing weights, e.g. {missing[:3]}); "
            f"a full VAE or another network will not do, {DOWNLOAD_HINT}"
        )
    unexpected = sorted(set(state) - set(expected) - set(optional), key=_key_order)
    if unexpected:
        raise TaesdError(f"{label}: unexpected weights {unexpected[:3]}; this is not a TAESD {part} this pack understands")
    for key, value in state.items():
        want = expected.get(key, optional.get(key))
        if tuple(value.shape) != want:
            raise TaesdError(
                f"{label}: weight {key!r} has shape {tuple(value.shape)}, expected {want}; the file is not a TAESD {part}"
            )
        if not value.is_floating_point():
            raise TaesdError(f"{label}: weight {key!r} is {value.dtype}, not floating point")
    weights = {key: value.detach().to(torch.float32).contiguous() for key, value in state.items()}
    for key, value in weights.items():
        if not torch.isfinite(value).all():
            raise TaesdError(f"{label}: weight {key!r} holds NaN/inf; the file is damaged, {DOWNLOAD_HINT}")
    return weights, int(channels), bool(pooled)


def _key_order(key: str) -> tuple:
    head, _, rest = key.partition(".")
    return (int(head) if head.isdigit() else 10**6, rest)
