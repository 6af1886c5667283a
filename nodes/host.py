"""The one seam between the pack and the ComfyUI host.

Every use of ``comfy``, ``folder_paths`` and ``latent_preview`` goes through a function here and
imports lazily, inside the function, so the pack imports and its nodes run without ComfyUI
(tests replace the few functions below that need the host). Nothing here paints; it reads the
host's objects and calls the host's sampling, progress and folder functions.

Read against ComfyUI 0.8.0 (``nodes.py:common_ksampler``, ``comfy_extras/nodes_custom_sampler.py:
SamplerCustomAdvanced``, ``latent_preview.prepare_callback``, ``folder_paths``).
"""

from __future__ import annotations

import hashlib
import importlib
import os

import torch

from ..painter.incremental import StagedDecoder, sequential_stages
from ..painter.plan import LatentFormat, is_plan_file
from ..painter.projection import factors_through_affine
from ..painter.taesd import TinyAutoencoder

PLAN_SUFFIX = ".safetensors"
OUTPUT_TAG = " [output]"
INPUT_TAG = " [input]"


class HostUnavailable(RuntimeError):
    """A host function was called outside ComfyUI."""


def _host(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise HostUnavailable(
            f"Latent Painter: '{module}' is not importable; this node needs to run inside ComfyUI"
        ) from error


# --- widgets -----------------------------------------------------------------------------------


def sampler_names() -> list[str]:
    """The core KSampler's sampler list (``comfy.samplers.KSampler.SAMPLERS``)."""
    return list(_host("comfy.samplers").KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    """The core KSampler's scheduler list (``comfy.samplers.KSampler.SCHEDULERS``)."""
    return list(_host("comfy.samplers").KSampler.SCHEDULERS)


# --- progress and interrupt --------------------------------------------------------------------


def progress(total: int):
    """A ``report(done, total)`` that moves a ComfyUI progress bar and raises on Cancel.

    ``throw_exception_if_processing_interrupted`` raises ComfyUI's ``InterruptProcessingException``;
    the nodes let it pass, so the run stops cleanly between two painter or decoder steps.
    """
    utils = _host("comfy.utils")
    management = _host("comfy.model_management")
    bar = utils.ProgressBar(max(1, int(total)))

    def report(done: int, of: int) -> None:
        management.throw_exception_if_processing_interrupted()
        bar.update_absolute(int(done), int(of))

    return report


# --- models and latent formats (no import needed: they read the objects they are given) -------


def latent_format(model) -> LatentFormat:
    """The latent format of a ComfyUI MODEL (a ModelPatcher) as the painter records it.

    name, channels, scale and shift are ComfyUI's (class name, ``latent_channels``,
    ``scale_factor``, ``shift_factor``). ComfyUI's ``latent_rgb_factors``/``_bias`` act on the
    model's internal space (``process_in``); the plan lives in LATENT space, so the factors are
    carried over through ``process_in``, which is per-channel affine for every image format.
    Formats whose factors need a reshape (Flux.2) or whose ``process_in`` is not per-channel
    affine get no factors (the painter then measures change in latent units).
    """
    fmt = model.get_model_object("latent_format")
    channels = int(getattr(fmt, "latent_channels", 0))
    factors, bias = _latent_space_rgb(fmt, channels)
    return LatentFormat(
        name=type(fmt).__name__,
        channels=channels,
        scale=float(getattr(fmt, "scale_factor", 1.0)),
        shift=float(getattr(fmt, "shift_factor", 0.0) or 0.0),
        rgb_factors=factors,
        rgb_bias=bias,
    )


def _latent_space_rgb(fmt, channels: int):
    raw = getattr(fmt, "latent_rgb_factors", None)
    if raw is None or getattr(fmt, "latent_rgb_factors_reshape", None) is not None or channels < 1:
        return None, None
    try:
        factors = torch.tensor(raw, dtype=torch.float64)
        raw_bias = getattr(fmt, "latent_rgb_factors_bias", None)
        bias = torch.zeros(3, dtype=torch.float64) if raw_bias is None else torch.tensor(raw_bias, dtype=torch.float64)
        if factors.shape != (channels, 3) or bias.shape != (3,):
            return None, None
        # process_in(x) = gain * x + offset per channel; read gain and offset off two probes and
        # check the third, so a non-affine format never gets wrong factors.
        def process_in(x):
            return fmt.process_in(x.to(torch.float32)).to(torch.float64).reshape(channels)

        shape = (1, channels, 1, 1)
        offset = process_in(torch.zeros(shape, dtype=torch.float64))
        gain = process_in(torch.ones(shape, dtype=torch.float64)) - offset
        probe = torch.linspace(-2.0, 3.0, channels, dtype=torch.float64)
        if not torch.allclose(process_in(probe.reshape(shape)), gain * probe + offset, rtol=1e-4, atol=1e-5):
            return None, None
    except Exception:  # a format with a process_in we cannot probe: measure change in latent units
        return None, None
    latent_factors, latent_bias = factors_through_affine(factors, bias, gain, offset)
    return (
        tuple(tuple(float(v) for v in row) for row in latent_factors.tolist()),
        tuple(float(v) for v in latent_bias.tolist()),
    )


def latent_out(model, x0: torch.Tensor) -> torch.Tensor:
    """A sampler callback's x0 (model space, on the model device) as a CPU LATENT-space tensor,
    converted like core SamplerCustomAdvanced's ``denoised_output``."""
    return model.model.process_latent_out(x0.detach().to("cpu", copy=True))


def guider_model(guider):
    """The MODEL (ModelPatcher) behind a GUIDER."""
    return guider.model_patcher


# --- decoders ---------------------------------------------------------------------------------


def staged_decoder(vae) -> StagedDecoder:
    """A ComfyUI VAE for incremental decoding: split after its latent-resolution stage when its
    ``first_stage_model`` is core TAESD (``comfy.taesd.taesd.TAESD``, an ``nn.Sequential``
    decoder), opaque (``vae.decode`` only) otherwise.

    The halves reproduce 0.8.0's ``TAESD.decode`` (``(x - vae_shift) * vae_scale`` in, ``2y - 1``
    out) and ``VAE.decode`` (dtype and device in, ``process_output``, float and channels-last
    out). Whatever they get wrong, the checks against ``vae.decode`` catch.
    """
    if isinstance(vae, TinyAutoencoder):  # the pack's own TAESD (tests, demo)
        return StagedDecoder.of_taesd(vae)
    model = getattr(vae, "first_stage_model", None)
    decoder = getattr(model, "taesd_decoder", None)
    if type(model).__name__ != "TAESD" or not all(hasattr(model, name) for name in ("vae_shift", "vae_scale")):
        return StagedDecoder.opaque(vae.decode, name=type(model).__name__)
    try:
        head_layers, tail_layers = sequential_stages(decoder)
    except ValueError:
        return StagedDecoder.opaque(vae.decode, name="TAESD")
    management = _host("comfy.model_management")

    def head(latents: torch.Tensor) -> torch.Tensor:
        management.load_models_gpu([vae.patcher], memory_required=vae.memory_used_decode(latents.shape, vae.vae_dtype))
        x = latents.to(vae.vae_dtype).to(vae.device)
        return head_layers((x - model.vae_shift) * model.vae_scale)

    def tail(features: torch.Tensor) -> torch.Tensor:
        images = tail_layers(features).sub(0.5).mul(2)
        return vae.process_output(images.to(vae.output_device).float()).movedim(1, -1)

    return StagedDecoder(decode=vae.decode, head=head, tail=tail, scale=8, reach=8, name="TAESD")


# --- sampling ---------------------------------------------------------------------------------


def _watch(callback, observe):
    """Wrap a core preview callback: report x0 first, then preview, progress bar and Cancel."""
    if observe is None:
        return callback

    def watched(step, x0, x, total_steps):
        observe(step, x0)
        return callback(step, x0, x, total_steps)

    return watched


def _refuse_video(samples, where: str) -> None:
    if getattr(samples, "is_nested", False) or samples.dim() != 4:
        raise ValueError(
            f"{where}: latent_image: the model samples {'nested' if samples.is_nested else f'{samples.dim()}-D'} "
            "latents (a video or multi-part model); Latent Painter paints image latents [B,C,H,W] only, "
            "so use an image model"
        )


def ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent, denoise=1.0,
             observe=None, where: str = "Latent Painter Sampler"):
    """Core ``common_ksampler`` of ComfyUI 0.8.0 (same noise, mask, callback, progress and result),
    with ``observe(step, x0)`` called from the sampler callback before the preview.

    Returns ``(LATENT, sigmas)``: the LATENT exactly as core KSampler returns it, and the sigma
    schedule the sampler ran (``steps + 1`` values, on the CPU).
    """
    sample = _host("comfy.sample")
    samplers = _host("comfy.samplers")
    utils = _host("comfy.utils")
    preview = _host("latent_preview")

    latent_image = sample.fix_empty_latent_channels(model, latent["samples"])
    _refuse_video(latent_image, where)
    batch_inds = latent["batch_index"] if "batch_index" in latent else None
    noise = sample.prepare_noise(latent_image, seed, batch_inds)
    noise_mask = latent["noise_mask"] if "noise_mask" in latent else None
    # The schedule comfy.sample.sample will build from the same arguments (recorded in the plan).
    sigmas = samplers.KSampler(
        model, steps=steps, device=model.load_device, sampler=sampler_name, scheduler=scheduler,
        denoise=denoise, model_options=model.model_options,
    ).sigmas.detach().to("cpu", torch.float32)
    callback = _watch(preview.prepare_callback(model, steps), observe)
    disable_pbar = not utils.PROGRESS_BAR_ENABLED
    samples = sample.sample(
        model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
        denoise=denoise, disable_noise=False, start_step=None, last_step=None, force_full_denoise=False,
        noise_mask=noise_mask, callback=callback, disable_pbar=disable_pbar, seed=seed,
    )
    out = latent.copy()
    out["samples"] = samples
    return out, sigmas


def sampler_custom_advanced(noise, guider, sampler, sigmas, latent_image, observe=None,
                            where: str = "Latent Painter Sampler (Custom)"):
    """Core ``SamplerCustomAdvanced`` of ComfyUI 0.8.0 (its ``output``), with ``observe(step, x0)``
    called from the sampler callback before the preview."""
    sample = _host("comfy.sample")
    utils = _host("comfy.utils")
    management = _host("comfy.model_management")
    preview = _host("latent_preview")

    model = guider.model_patcher
    latent = latent_image.copy()
    samples_in = sample.fix_empty_latent_channels(model, latent["samples"])
    _refuse_video(samples_in, where)
    latent["samples"] = samples_in
    noise_mask = latent["noise_mask"] if "noise_mask" in latent else None
    callback = _watch(preview.prepare_callback(model, sigmas.shape[-1] - 1), observe)
    disable_pbar = not utils.PROGRESS_BAR_ENABLED
    samples = guider.sample(
        noise.generate_noise(latent), samples_in, sampler, sigmas,
        denoise_mask=noise_mask, callback=callback, disable_pbar=disable_pbar, seed=noise.seed,
    )
    samples = samples.to(management.intermediate_device())
    out = latent.copy()
    out["samples"] = samples
    return out


# --- folders ----------------------------------------------------------------------------------


def input_directory() -> str:
    return _host("folder_paths").get_input_directory()


def output_directory() -> str:
    return _host("folder_paths").get_output_directory()


def save_location(filename_prefix: str) -> tuple[str, str, int, str]:
    """``(folder, filename, counter, subfolder)`` for the next file of ``filename_prefix`` in the
    output folder, numbered like core SaveImage/SaveLatent (and refusing paths outside it)."""
    folder_paths = _host("folder_paths")
    folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_directory())
    return folder, filename, counter, subfolder


def _plans_under(root: str) -> list[str]:
    found = []
    if not os.path.isdir(root):
        return found
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.endswith(PLAN_SUFFIX) and not name.startswith("."):
                path = os.path.join(folder, name)
                if is_plan_file(path):
                    found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found)


def plan_files() -> list[str]:
    """Plan files for the Load Plan combo: the input folder's, then the output folder's
    (annotated ``" [output]"``, ComfyUI's own notation for output-folder files)."""
    return _plans_under(input_directory()) + [name + OUTPUT_TAG for name in _plans_under(output_directory())]


def plan_path(name: str) -> str | None:
    """The file behind a Load Plan combo value, or None when it names nothing inside the folders."""
    if not isinstance(name, str) or not name:
        return None
    if name.endswith(OUTPUT_TAG):
        base, name = output_directory(), name[: -len(OUTPUT_TAG)]
    elif name.endswith(INPUT_TAG):
        base, name = input_directory(), name[: -len(INPUT_TAG)]
    else:
        base = input_directory()
    base = os.path.realpath(base)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath((base, path)) != base or not os.path.isfile(path):
        return None
    return path


def file_fingerprint(path: str) -> str:
    """sha256 of a file, for IS_CHANGED (a re-saved plan under the same name re-runs the graph)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
