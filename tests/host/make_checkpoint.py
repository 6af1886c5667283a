"""Write small test models with seeded random weights (no download).

Run with the ComfyUI host's Python and cwd = the ComfyUI checkout (the harness does this):

    cd $COMFYUI_PATH && $COMFYUI_PYTHON /path/to/make_checkpoint.py OUT.safetensors SEED [--family F] [--check]

Families (``--family``):

- ``sd15`` (default): a full checkpoint for ``CheckpointLoaderSimple`` (UNet, VAE, CLIP), below.
- ``sd3``: a diffusion model only, for the core ``UNETLoader`` ("Load Diffusion Model"), that
  ComfyUI detects as SD3 (latent format ``SD3``: 16 channels, scale 1.5305, shift 0.0609), so
  tests get a second, *different* latent space for a few MB. An MMDiT's hidden size is
  64 x depth and the depth is read from ``x_embedder`` (``model_detection.detect_unet_config``),
  so depth 2 is a 128-wide, 2-block model (~1M params, ~2 MB, built in a second). Its text
  input sizes are read from the keys too: ``context_embedder`` takes 768 features and
  ``y_embedder`` a 768 pooled vector, exactly what SD1.5's CLIP (CLIPTextEncode with the sd15
  checkpoint's CLIP) produces, so no SD3 text encoder is needed. ``supported_models.SD3``
  matches on ``in_channels == 16`` alone.

The sd15 checkpoint:

ComfyUI's own module classes are built on the ``meta`` device as a shape oracle (no memory, no
init cost); every tensor is then filled from one seeded generator in sorted key order and stored
as fp16. The layout is what ``CheckpointLoaderSimple`` detects as SD1.5:

- ``model.diffusion_model.*``: the SD1.5 UNet with 1 res block per level instead of 2
  (detection reads depths from the keys; still SD15: context_dim 768, model_channels 320).
- ``first_stage_model.*``: the SD AutoencoderKL (ch 128, ch_mult 1,2,4,4, z_channels 4).
- ``cond_stage_model.transformer.text_model.*``: CLIP-L text model (12 layers, width 768).

Init: norms weight 1 / bias 0, conv and linear weights N(0, 1/fan_in) (variance preserving),
biases 0, embeddings N(0, 0.02). Random weights give meaningless images but finite numbers;
``--check`` loads the file through ComfyUI and runs a 2-step 64x64 sample + decode to prove it.

This file is test tooling for the Latent Painter pack; it imports ComfyUI only at run time from
the checkout named by the working directory / COMFYUI_PATH, and copies none of its code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

COMFY_DIR = os.environ.get("COMFYUI_PATH") or os.getcwd()
sys.path.insert(0, os.path.abspath(COMFY_DIR))

import torch  # noqa: E402


def _comfy_cpu() -> None:
    """Select ComfyUI's CPU mode before comfy.model_management is imported (it probes CUDA)."""
    from comfy.cli_args import args

    args.cpu = True

# UNet config of SD1.5 as comfy/model_detection.py derives it from the keys, with one res block
# per level (transformer_depth: one entry per input res block; _output: per output block, popped
# from the end, i.e. listed from the highest-resolution level down).
UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [1, 1, 1, 1],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth": [1, 1, 1, 0],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 0, 0],
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "num_head_channels": -1,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

VAE_DDCONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}


# MMDiT config as comfy/model_detection.py derives it from the keys of the sd3 family's file.
SD3_CONFIG = {
    "input_size": None,
    "patch_size": 2,
    "in_channels": 16,
    "out_channels": 16,
    "depth": 2,  # hidden size 128, 2 heads of 64
    "adm_in_channels": 768,  # y_embedder: SD1.5 CLIP's pooled output
    "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 768, "out_features": 128}},
    "num_patches": 256,  # pos_embed_max_size 16: latents up to 32x32 (256 px)
    "pos_embed_max_size": 16,
    "pos_embed_scaling_factor": None,
    "x_block_self_attn_layers": [],
}


def _meta_modules_sd3():
    """The MMDiT alone (keys without prefix, as in a diffusion_models file)."""
    _comfy_cpu()
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

    mmdit = MMDiT(**SD3_CONFIG, dtype=torch.float32, device="meta", operations=comfy.ops.disable_weight_init)
    return [("", mmdit, None)]


def _meta_modules_vaes(family: str):
    """``kl_vae``: SD's AutoencoderKL alone (keys as in a VAE file, for ``comfy.sd.VAE(sd=...)``);
    ``taesd``: core TAESD's encoder and decoder for SD1 latents (keys ``taesd_encoder.*`` and
    ``taesd_decoder.*``, as ``nodes.VAELoader.load_taesd`` assembles them from vae_approx files)."""
    _comfy_cpu()
    if family == "kl_vae":
        from comfy.ldm.models.autoencoder import AutoencoderKL

        with torch.device("meta"):
            return [("", AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4), None)]
    from comfy.taesd.taesd import Decoder, Encoder

    with torch.device("meta"):
        return [("taesd_encoder.", Encoder(latent_channels=4), None), ("taesd_decoder.", Decoder(latent_channels=4), None)]


def _meta_modules(family: str = "sd15"):
    """(prefix, module) pairs built on the meta device with ComfyUI's own classes."""
    if family == "sd3":
        return _meta_modules_sd3()
    if family in ("kl_vae", "taesd"):
        return _meta_modules_vaes(family)
    _comfy_cpu()
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from comfy.ldm.models.autoencoder import AutoencoderKL
    import comfy.clip_model

    ops = comfy.ops.disable_weight_init
    unet = UNetModel(**UNET_CONFIG, dtype=torch.float32, device="meta", operations=ops)
    with torch.device("meta"):
        vae = AutoencoderKL(ddconfig=dict(VAE_DDCONFIG), embed_dim=4)
    with open(os.path.join(COMFY_DIR, "comfy", "sd1_clip_config.json")) as f:
        clip_cfg = json.load(f)
    clip = comfy.clip_model.CLIPTextModel(clip_cfg, torch.float32, "meta", ops)
    return [
        ("model.diffusion_model.", unet, None),
        ("first_stage_model.", vae, None),
        # Only the text model: SD1.5 checkpoints carry no text_projection / logit_scale.
        ("cond_stage_model.transformer.", clip, "text_model."),
    ]


def _init_kind(module: torch.nn.Module, pname: str) -> str:
    norm_types = (torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.BatchNorm2d)
    if isinstance(module, norm_types):
        return "one" if pname == "weight" else "zero"
    if isinstance(module, torch.nn.Embedding):
        return "embed"
    if pname == "bias":
        return "zero"
    return "fan_in"


# Weight std = GAIN / sqrt(fan_in). TAESD is a plain ReLU stack without norms: with gain 1 its
# signal halves in variance at every layer and the random decoder paints flat grey; He's gain
# sqrt(2) keeps images with texture, so comparisons of decodes mean something.
GAIN = {"taesd": math.sqrt(2.0)}


def build_state_dict(seed: int, family: str = "sd15") -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gain = GAIN.get(family, 1.0)
    specs = []  # (key, shape, kind)
    for prefix, root, keep in _meta_modules(family):
        for mname, module in root.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                name = f"{mname}.{pname}" if mname else pname
                if keep is not None and not name.startswith(keep):
                    continue
                specs.append((prefix + name, tuple(p.shape), _init_kind(module, pname)))
            for bname, b in module.named_buffers(recurse=False):
                name = f"{mname}.{bname}" if mname else bname
                if keep is not None and not name.startswith(keep):
                    continue
                if b is not None and "position_ids" not in name:
                    specs.append((prefix + name, tuple(b.shape), "zero"))
    specs.sort(key=lambda s: s[0])
    sd = {}
    for key, shape, kind in specs:
        if kind == "one":
            t = torch.ones(shape, dtype=torch.float16)
        elif kind == "zero":
            t = torch.zeros(shape, dtype=torch.float16)
        else:
            if kind == "embed":
                std = 0.02
            else:
                fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
                std = gain / math.sqrt(max(fan_in, 1))
            t = torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std).to(torch.float16)
        sd[key] = t
    return sd


def taesd_state_dict(folder, out_path: str) -> str:
    """A ``models/vae`` file of a real TAESD pair (``taef2_encoder`` / ``taef2_decoder`` in ``folder``),
    its keys prefixed ``taesd_encoder.`` / ``taesd_decoder.``: what core ``VAELoader`` builds its
    ``comfy.taesd.taesd.TAESD`` from (comfy/sd.py), here a 32-channel one. Test fixture only: the
    weights are read from where the pack's lookup finds them and never shipped."""
    from safetensors.torch import save_file

    state = {}
    for part in ("encoder", "decoder"):
        weights = torch.load(os.path.join(folder, f"taef2_{part}.pth"), map_location="cpu", weights_only=True)
        state.update({f"taesd_{part}.{key}": value.contiguous() for key, value in weights.items()})
    save_file(state, out_path)
    return out_path


def check(path: str) -> None:
    """Load through ComfyUI's loader and run a tiny sample + decode; raise on NaN/inf."""
    _comfy_cpu()
    import comfy.sd
    import comfy.sample
    import comfy.model_detection

    model, clip, vae = comfy.sd.load_checkpoint_guess_config(path)[:3]
    name = type(model.model.model_config).__name__
    if name != "SD15":
        raise SystemExit(f"detected as {name}, expected SD15")
    pos = clip.encode_from_tokens_scheduled(clip.tokenize("a painting"))
    neg = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = torch.zeros([1, 4, 8, 8])
    noise = comfy.sample.prepare_noise(latent, 0)
    out = comfy.sample.sample(model, noise, 2, 7.0, "euler", "normal", pos, neg, latent, disable_pbar=True)
    img = vae.decode(out)
    for what, t in (("latent", out), ("image", img)):
        if not torch.isfinite(t).all():
            raise SystemExit(f"non-finite {what} from random checkpoint")
    print(f"check ok: latent std {out.std().item():.3f}, image range "
          f"[{img.min().item():.3f}, {img.max().item():.3f}]", flush=True)


def check_sd3(path: str) -> None:
    """Load through the core diffusion-model loader, expect SD3, sample 2 steps with 768-wide
    conditioning (what SD1.5's CLIP gives); raise on NaN/inf."""
    _comfy_cpu()
    import comfy.sd
    import comfy.sample

    model = comfy.sd.load_diffusion_model(path)
    name = type(model.model.model_config).__name__
    fmt = type(model.get_model_object("latent_format")).__name__
    if (name, fmt) != ("SD3", "SD3"):
        raise SystemExit(f"detected as {name} with latent format {fmt}, expected SD3/SD3")
    gen = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 77, 768, generator=gen), {"pooled_output": torch.randn(1, 768, generator=gen)}]]
    latent = comfy.sample.fix_empty_latent_channels(model, torch.zeros([1, 4, 8, 8]))
    noise = comfy.sample.prepare_noise(latent, 0)
    out = comfy.sample.sample(model, noise, 2, 4.0, "euler", "simple", cond, cond, latent, disable_pbar=True)
    if tuple(out.shape) != (1, 16, 8, 8) or not torch.isfinite(out).all():
        raise SystemExit(f"bad sample from the random SD3 model: shape {tuple(out.shape)}")
    print(f"check ok: SD3 latent std {out.std().item():.3f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .safetensors path")
    ap.add_argument("seed", type=int)
    ap.add_argument("--family", choices=("sd15", "sd3"), default="sd15",
                    help="sd15: full checkpoint (default); sd3: tiny SD3 diffusion model for UNETLoader")
    ap.add_argument("--check", action="store_true", help="load it through ComfyUI and sample once")
    args = ap.parse_args(argv)

    from safetensors.torch import save_file

    t0 = time.time()
    sd = build_state_dict(args.seed, args.family)
    n = sum(t.numel() for t in sd.values())
    tmp = args.out + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(sd, tmp, metadata={"latent_painter_test_checkpoint": f"{args.family}-random",
                                 "seed": str(args.seed)})
    os.replace(tmp, args.out)  # never leave a half file under the final name
    print(f"wrote {args.out}: {len(sd)} tensors, {n / 1e6:.0f}M params, "
          f"{os.path.getsize(args.out) / 1e9:.2f} GB, {time.time() - t0:.1f} s", flush=True)
    if args.check:
        del sd
        t1 = time.time()
        (check_sd3 if args.family == "sd3" else check)(args.out)
        print(f"check took {time.time() - t1:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
