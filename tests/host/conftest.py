"""Session fixtures for tests that run the pack inside a real ComfyUI (see comfy_host.py).

Without COMFYUI_PATH every test in this folder is skipped (reported as skipped, not as errors),
unless LATENT_PAINTER_REQUIRE_HOST=1 (CI), where a host test that skips fails with its reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from comfy_host import ComfyHost, comfy_path, comfy_path_or_skip

_HERE = Path(__file__).resolve().parent

SEED_A = 1001
SEED_B = 2002
SEED_SD3 = 3003
SEED_WAN = 4004
SEED_VAE = 5005


# CI sets this: a host test that cannot run (no ComfyUI, no playwright, no Chromium, a fixture it
# cannot build) fails with its reason instead of skipping, so a green CI ran every one of them.
REQUIRE_HOST = os.environ.get("LATENT_PAINTER_REQUIRE_HOST") == "1"


def _is_host_test(item) -> bool:
    return _HERE in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(config, items):
    skip = None
    if comfy_path() is None:
        skip = pytest.mark.skip(reason="host tests need COMFYUI_PATH (a ComfyUI checkout)")
    for item in items:
        if _is_host_test(item):
            item.add_marker(pytest.mark.host)
            if skip is not None:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_HOST and report.skipped and _is_host_test(item) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"LATENT_PAINTER_REQUIRE_HOST=1 (CI): this host test must run, but it skipped: {reason}"


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """A running ComfyUI server with the pack linked in; stopped at the end of the session."""
    path = comfy_path_or_skip()
    host = ComfyHost(path, tmp_path_factory.mktemp("comfyui"))
    host.start()
    try:
        yield host
    finally:
        host.stop()
        if not os.environ.get("LATENT_PAINTER_CKPT_CACHE"):
            # ~1.6 GB each; pytest keeps the last few scratch dirs, so free them now.
            for f in host.checkpoints.glob("*.safetensors"):
                f.unlink(missing_ok=True)


def _checkpoint(comfy: ComfyHost, seed: int) -> str:
    name = comfy.ensure_checkpoint(seed)
    listed = comfy.object_info("CheckpointLoaderSimple")["input"]["required"]["ckpt_name"]
    options = listed[0] if isinstance(listed[0], list) else listed[1].get("options", [])
    assert name in options, f"{name} written but not listed by CheckpointLoaderSimple: {options}"
    return name


@pytest.fixture(scope="session")
def checkpoint_a(comfy) -> str:
    """ckpt_name of a random SD1.5-layout checkpoint (seed SEED_A), as the loader lists it."""
    return _checkpoint(comfy, SEED_A)


@pytest.fixture(scope="session")
def checkpoint_b(comfy) -> str:
    """A second SD1.5-layout checkpoint with other random weights (same latent format as A)."""
    return _checkpoint(comfy, SEED_B)


@pytest.fixture(scope="session")
def sd3_model(comfy) -> str:
    """unet_name of a tiny random SD3 diffusion model for the core UNETLoader: a second model family
    with another latent format (SD3: 16 channels, scale 1.5305, shift 0.0609). Its text inputs are
    768 wide, so CLIPTextEncode with checkpoint A's CLIP conditions it."""
    name = comfy.ensure_diffusion_model(SEED_SD3, "sd3")
    listed = comfy.object_info("UNETLoader")["input"]["required"]["unet_name"]
    options = listed[0] if isinstance(listed[0], list) else listed[1].get("options", [])
    assert name in options, f"{name} written but not listed by UNETLoader: {options}"
    return name


def _listed(comfy: ComfyHost, node: str, key: str, name: str) -> str:
    listed = comfy.object_info(node)["input"]["required"][key]
    options = listed[0] if isinstance(listed[0], list) else listed[1].get("options", [])
    assert name in options, f"{name} written but not listed by {node}: {options}"
    return name


@pytest.fixture(scope="session")
def wan21_model(comfy) -> str:
    """unet_name of a tiny random Wan 2.1 text-to-video model (dim 128, one head, one block, ffn 256,
    16 in/out channels: ~0.9M parameters) that ComfyUI's detection loads as WAN21_T2V, latent format
    Wan21 (16 channels, latent_dimensions 3). It takes 4096-wide text features (umT5-XXL's width):
    condition it with the test node LatentPainterTestConditioning (latent_painter_test_nodes.py)."""
    return _listed(comfy, "UNETLoader", "unet_name", comfy.ensure_diffusion_model(SEED_WAN, "wan21"))


FAMILY_VAES = ("kl_vae16", "flux2_vae", "wan21_vae", "wan21_vae_rgba")


@pytest.fixture(scope="session")
def family_vaes(comfy) -> dict[str, str]:
    """vae_name per random VAE for core VAELoader: ``kl_vae16`` (a 16-channel KL VAE, SD3's latent
    width), ``flux2_vae`` (Flux.2's: 32 z channels patched to 128 at 1/16), ``wan21_vae`` and
    ``wan21_vae_rgba`` (a small Wan 2.1 VAE, [B,16,T,H/8,W/8], decoding to RGB / RGBA)."""
    names = comfy.ensure_vaes(SEED_VAE, FAMILY_VAES)
    return {family: _listed(comfy, "VAELoader", "vae_name", name) for family, name in names.items()}


# ---------------------------------------------------------------------- the templates' test models
# Session fixtures: every module that opens the frontend needs them before the page loads (its
# loaders' combos list the files that exist then).
def _safetensors_part(path: Path, prefix: str) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {key[len(prefix):]: f.get_tensor(key) for key in f.keys() if key.startswith(prefix)}


@pytest.fixture(scope="session")
def text_encoder_a(comfy, checkpoint_a) -> str:
    """Checkpoint A's CLIP-L text model as a ``text_encoders`` file: core CLIPLoader with type
    ``stable_diffusion`` loads it, and its 768-wide output conditions the tiny SD3 model."""
    from safetensors.torch import save_file

    name = "latent_painter_test_clip_l_seed1001.safetensors"
    target = comfy.text_encoders / name
    if not target.exists():
        save_file(_safetensors_part(comfy.checkpoints / checkpoint_a, "cond_stage_model.transformer."), str(target))
    return name


@pytest.fixture(scope="session")
def vae_16(comfy, checkpoint_a) -> str:
    """A KL VAE for 16-channel latents (the SD3 / Flux.1 / Z-Image shape) for core VAELoader: checkpoint
    A's random VAE with its latent-side layers rebuilt 16 channels wide (seeded, variance preserving).
    ComfyUI reads the channels from ``decoder.conv_in``; decoding with it is a full KL decode."""
    import math

    import torch
    from safetensors.torch import save_file

    name = "latent_painter_test_kl_vae16.safetensors"
    target = comfy.vaes / name
    if not target.exists():
        sd = _safetensors_part(comfy.checkpoints / checkpoint_a, "first_stage_model.")
        gen = torch.Generator().manual_seed(16)
        shapes = {"encoder.conv_out.weight": (32, sd["encoder.conv_out.weight"].shape[1], 3, 3),
                  "quant_conv.weight": (32, 32, 1, 1), "post_quant_conv.weight": (16, 16, 1, 1),
                  "decoder.conv_in.weight": (sd["decoder.conv_in.weight"].shape[0], 16, 3, 3)}
        for key, shape in shapes.items():
            sd[key] = (torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))).half()
        for key, width in (("encoder.conv_out.bias", 32), ("quant_conv.bias", 32), ("post_quant_conv.bias", 16)):
            sd[key] = torch.zeros(width, dtype=torch.float16)
        save_file(sd, str(target))
    return name


@pytest.fixture(scope="session")
def vae_approx_taesd(comfy) -> str:
    """Random SD1 TAESD files in ``models/vae_approx`` (``taesd_encoder`` / ``taesd_decoder``, core
    ComfyUI's own TAESD classes, make_checkpoint.py), so core VAELoader offers ``taesd`` as it does
    for a user who put the real files there. Returns that option."""
    import subprocess

    from comfy_host import MAKE_CHECKPOINT

    if not (comfy.vae_approx / "taesd_decoder.safetensors").exists():
        code = ("import sys; from make_checkpoint import build_state_dict; from safetensors.torch import save_file; "
                "sd = build_state_dict(1001, 'taesd'); "
                "[save_file({k[len(p) + 1:]: v for k, v in sd.items() if k.startswith(p + '.')}, "
                "f'{sys.argv[1]}/{p}.safetensors') for p in ('taesd_encoder', 'taesd_decoder')]")
        res = subprocess.run([comfy.python, "-c", code, str(comfy.vae_approx)], cwd=MAKE_CHECKPOINT.parent,
                             capture_output=True, text=True, timeout=300, env={**os.environ, "COMFYUI_PATH": str(comfy.path)})
        assert res.returncode == 0, res.stderr[-3000:]
    listed = comfy.object_info("VAELoader")["input"]["required"]["vae_name"][0]
    assert "taesd" in listed, listed
    return "taesd"


@pytest.fixture(scope="session")
def models(checkpoint_a, checkpoint_b, sd3_model, text_encoder_a, vae_16, vae_approx_taesd) -> dict:
    """What the templates' loaders load in these tests. The diffusion-model shape gets one family:
    the tiny SD3 (16-channel 4-D latents) with checkpoint A's CLIP-L and a 16-channel KL VAE. A
    Qwen-style family ([B,16,1,H,W] latents) swaps in here: its unet, text encoder (and type) and VAE."""
    return {"A": checkpoint_a, "B": checkpoint_b, "unet": sd3_model, "clip": text_encoder_a,
            "clip_type": "stable_diffusion", "vae": vae_16, "taesd": vae_approx_taesd}

# What the host tests measured (each family's final-latent equality, each template's run time and
# decode path, the help pages' status codes) is printed by the tests; pytest keeps a passing test's
# output to itself, so it is repeated at the end of the run, where CI's log shows it.
_MEASURED: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and report.capstdout.strip() and "tests/host/" in report.nodeid:
        _MEASURED.append((report.nodeid, report.capstdout.strip()))


def pytest_terminal_summary(terminalreporter):
    if _MEASURED:
        terminalreporter.section("what the host tests measured")
        for nodeid, text in _MEASURED:
            terminalreporter.write_line(f"{nodeid}:")
            for line in text.splitlines():
                terminalreporter.write_line(f"    {line}")
