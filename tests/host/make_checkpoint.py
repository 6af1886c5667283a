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
- ``wan21``: a Wan 2.1 text-to-video diffusion model (WAN21_CONFIG, ~0.9M parameters) that the
  core ``UNETLoader`` detects as WAN21_T2V (latent format ``Wan21``: 16 channels, 3-D latents).
- VAEs for the core ``VAELoader``: ``kl_vae16`` (SD's KL VAE with 16 latent channels),
  ``flux2_vae`` (Flux.2's: 32 z channels, 2x2 patches batch-normed to 128 channels at 1/16),
  ``wan21_vae`` / ``wan21_vae_rgba`` (a Wan 2.1 VAE of dim 8 decoding to RGB / RGBA).

``tiny_model`` builds, inside a running host, the families detection only builds at full width
(Qwen-Image, Flux.2, Chroma Radiance; TINY_MODELS), and ``tiny_conditioning`` gives text features of
any width; ``latent_painter_test_nodes.py`` offers both as test-only nodes.

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
    if family in VAE_Z:
        from comfy.ldm.models.autoencoder import AutoencoderKL

        z = VAE_Z[family]
        ddconfig = {**VAE_DDCONFIG, "z_channels": z}
        if family == "flux2_vae":  # Flux.2's VAE: 32 z channels, 2x2-patched and batch-normed to 128 at 1/16
            ddconfig["batch_norm_latent"] = True
        with torch.device("meta"):
            return [("", AutoencoderKL(ddconfig=ddconfig, embed_dim=z), None)]
    from comfy.taesd.taesd import Decoder, Encoder

    with torch.device("meta"):
        return [("taesd_encoder.", Encoder(latent_channels=4), None), ("taesd_decoder.", Decoder(latent_channels=4), None)]


# Wan 2.1 text-to-video as comfy/model_detection.py reads it from the keys: dim from head.modulation,
# num_heads = dim // 128, ffn from blocks.0.ffn.0, layers counted, in/out dims from patch_embedding and
# head.head; text_dim is not read (the model's default, 4096: umT5-XXL's width). ~0.9M parameters.
WAN21_CONFIG = {"model_type": "t2v", "patch_size": (1, 2, 2), "in_dim": 16, "dim": 128, "ffn_dim": 256, "freq_dim": 256,
                "text_dim": 4096, "out_dim": 16, "num_heads": 1, "num_layers": 1, "qk_norm": True,
                "cross_attn_norm": True, "eps": 1e-6}
# Wan 2.1 VAE as comfy.sd.VAE reads it: dim from decoder.head.0.gamma, image channels from encoder.conv1
# (4 = an RGBA VAE like Qwen-Image 2.1's); everything else is the branch's fixed config.
WAN21_VAE_DIM = 8

# KL VAEs (comfy.sd.VAE's default branch: ch/ch_mult fixed, z_channels read from decoder.conv_in).
VAE_Z = {"kl_vae": 4, "kl_vae16": 16, "flux2_vae": 32}


def _meta_modules_wan(family: str):
    _comfy_cpu()
    import comfy.ops

    if family == "wan21":
        from comfy.ldm.wan.model import WanModel

        return [("", WanModel(**WAN21_CONFIG, device="meta", dtype=torch.float32,
                              operations=comfy.ops.disable_weight_init), None)]
    from comfy.ldm.wan.vae import WanVAE

    with torch.device("meta"):
        vae = WanVAE(dim=WAN21_VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                     temperal_downsample=[False, True, True], image_channels=4 if family == "wan21_vae_rgba" else 3)
    return [("", vae, None)]


def _meta_modules(family: str = "sd15"):
    """(prefix, module) pairs built on the meta device with ComfyUI's own classes."""
    if family == "sd3":
        return _meta_modules_sd3()
    if family in ("kl_vae", "kl_vae16", "flux2_vae", "taesd"):
        return _meta_modules_vaes(family)
    if family in ("wan21", "wan21_vae", "wan21_vae_rgba"):
        return _meta_modules_wan(family)
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
    if "RMSNorm" in type(module).__name__ or pname in ("gamma", "scale"):  # RMS norms (DiTs, Wan's VAE)
        return "one" if pname in ("weight", "gamma", "scale") else "zero"
    if isinstance(module, torch.nn.Embedding):
        return "embed"
    if pname == "bias":
        return "zero"
    return "fan_in"


# Weight std = GAIN / sqrt(fan_in). TAESD is a plain ReLU stack without norms: with gain 1 its
# signal halves in variance at every layer and the random decoder paints flat grey; He's gain
# sqrt(2) keeps images with texture, so comparisons of decodes mean something.
GAIN = {"taesd": math.sqrt(2.0)}


def _specs(roots) -> list[tuple[str, tuple, str]]:
    """(key, shape, init kind) of every parameter and buffer of (prefix, module, keep) roots, sorted by key."""
    specs = []
    for prefix, root, keep in roots:
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
                    specs.append((prefix + name, tuple(b.shape), "one" if bname == "running_var" else "zero"))
    specs.sort(key=lambda s: s[0])
    return specs


def _fill(specs, seed: int, gain: float = 1.0, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """Tensors for ``specs`` from one seeded generator, in key order."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, kind in specs:
        if kind == "one":
            t = torch.ones(shape, dtype=dtype)
        elif kind == "zero":
            t = torch.zeros(shape, dtype=dtype)
        else:
            if kind == "embed":
                std = 0.02
            else:
                fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
                std = gain / math.sqrt(max(fan_in, 1))
            t = torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std).to(dtype)
        sd[key] = t
    return sd


def build_state_dict(seed: int, family: str = "sd15") -> dict[str, torch.Tensor]:
    return _fill(_specs(_meta_modules(family)), seed, GAIN.get(family, 1.0))


# Families whose detection fixes a large width (Qwen-Image: 24 heads of 128 and a 3584-wide text input;
# Flux.2: 48 heads of 128, one double block ~1.5G parameters; Chroma Radiance: 24 heads and a 5120-wide
# guidance approximator): built in the host from the config their detection gives, with small attention
# sizes (2 heads of 128 or 1, one block each; the rotary axes, patch sizes, channels and every flag as
# detected), matched to their ``supported_models`` entry by ComfyUI's own
# ``model_detection.model_config_from_unet_config``. Text inputs are TINY_CONTEXT wide.
TINY_CONTEXT = 256
TINY_MODELS = {
    "qwen_image": {"image_model": "qwen_image", "in_channels": 64, "out_channels": 16, "num_layers": 1,
                   "attention_head_dim": 128, "num_attention_heads": 1, "joint_attention_dim": TINY_CONTEXT},
    "flux2": {"image_model": "flux2", "axes_dim": [32, 32, 32, 32], "num_heads": 2, "mlp_ratio": 3.0, "theta": 2000,
              "out_channels": 128, "global_modulation": True, "mlp_silu_act": True, "qkv_bias": False,
              "ops_bias": False, "default_ref_method": "index", "ref_index_scale": 10.0, "txt_ids_dims": [3],
              "patch_size": 1, "in_channels": 128, "hidden_size": 256, "context_in_dim": TINY_CONTEXT,
              "vec_in_dim": None, "depth": 1, "depth_single_blocks": 1, "guidance_embed": False, "yak_mlp": False,
              "txt_norm": False},
    "chroma_radiance": {"image_model": "chroma_radiance", "axes_dim": [16, 56, 56], "num_heads": 2, "mlp_ratio": 4.0,
                        "theta": 10000, "in_channels": 3, "out_channels": 3, "qkv_bias": True, "txt_ids_dims": [],
                        "patch_size": 16, "hidden_size": 256, "context_in_dim": TINY_CONTEXT, "vec_in_dim": None,
                        "depth": 1, "depth_single_blocks": 1, "in_dim": 64, "out_dim": 256, "hidden_dim": 64,
                        "n_layers": 1, "nerf_hidden_size": 16, "nerf_mlp_ratio": 4, "nerf_depth": 1,
                        "nerf_max_freqs": 8, "nerf_tile_size": 512, "nerf_final_head_type": "conv",
                        "nerf_embedder_dtype": torch.float32, "use_x0": False},
}


def tiny_model(family: str, seed: int):
    """A ComfyUI MODEL (ModelPatcher) of ``family`` (TINY_MODELS) with seeded random weights, loaded the way
    ``comfy.sd.load_diffusion_model_state_dict`` loads a detected one (its dtype choice, devices, weights)."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher

    unet_config = {key: list(value) if isinstance(value, list) else value
                   for key, value in TINY_MODELS[family].items()}
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config)
    if model_config is None:
        raise ValueError(f"no supported model matches the {family} config {unet_config}")
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    unet_dtype = mm.unet_dtype(model_params=1, supported_dtypes=list(model_config.supported_inference_dtypes))
    model_config.set_inference_dtype(unet_dtype, mm.unet_manual_cast(unet_dtype, load_device,
                                                                     model_config.supported_inference_dtypes))
    model = model_config.get_model({}, "").to(offload_device)
    sd = _fill(_specs([("", model.diffusion_model, None)]), seed, dtype=torch.float32)
    model.diffusion_model.load_state_dict(sd, strict=True)  # every weight, nothing left uninitialised
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def tiny_conditioning(width: int, tokens: int, seed: int):
    """A CONDITIONING of ``tokens`` seeded N(0, 1) text features of ``width``, without a pooled vector (as a
    T5/LLM text encoder gives): what the tiny models above and the Wan model (4096 wide) take."""
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, width, generator=gen), {"pooled_output": None}]]


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


# What main() writes: a checkpoint, diffusion models, VAEs.
FILE_FAMILIES = ("sd15", "sd3", "wan21", "kl_vae16", "flux2_vae", "wan21_vae", "wan21_vae_rgba")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .safetensors path")
    ap.add_argument("seed", type=int)
    ap.add_argument("--family", choices=FILE_FAMILIES, default="sd15",
                    help="sd15: full checkpoint (default); sd3, wan21: tiny diffusion models for UNETLoader; "
                         "kl_vae16, flux2_vae, wan21_vae, wan21_vae_rgba: VAEs for VAELoader")
    ap.add_argument("--check", action="store_true", help="load it through ComfyUI and sample once")
    ap.add_argument("--also", nargs="*", default=[], metavar="OUT:FAMILY",
                    help="more files written with the same seed in the same process (one ComfyUI import)")
    args = ap.parse_args(argv)
    for item in args.also:
        out, family = item.rsplit(":", 1)
        if family not in FILE_FAMILIES:
            raise SystemExit(f"--also {item}: unknown family {family!r}")
        _write(out, args.seed, family)
    _write(args.out, args.seed, args.family)
    if args.check:
        t1 = time.time()
        (check_sd3 if args.family == "sd3" else check)(args.out)
        print(f"check took {time.time() - t1:.1f} s", flush=True)
    return 0


def _write(out: str, seed: int, family: str) -> None:
    from safetensors.torch import save_file

    t0 = time.time()
    sd = build_state_dict(seed, family)
    n = sum(t.numel() for t in sd.values())
    tmp = out + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_file(sd, tmp, metadata={"latent_painter_test_checkpoint": f"{family}-random",
                                 "seed": str(seed)})
    os.replace(tmp, out)  # never leave a half file under the final name
    print(f"wrote {out}: {len(sd)} tensors, {n / 1e6:.0f}M params, "
          f"{os.path.getsize(out) / 1e9:.2f} GB, {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
