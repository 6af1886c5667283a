"""The one seam between the pack and the ComfyUI host.

Every use of ``comfy``, ``folder_paths`` and ``latent_preview`` goes through a function here and
imports lazily, inside the function, so the pack imports and its nodes run without ComfyUI
(tests replace the few functions below that need the host). Nothing here paints; it reads the
host's objects and calls the host's sampling, progress and folder functions.

Read against ComfyUI 0.8.0 (``nodes.py:KSampler``, ``comfy_extras/nodes_custom_sampler.py:
SamplerCustomAdvanced``, ``comfy/patcher_extension.py``, ``comfy/samplers.py:CFGGuider``,
``comfy_execution/utils.py``, ``folder_paths``). Sampling is never re-implemented here: the
pack's samplers call the core nodes' own functions on a model carrying the capture patch.
"""

from __future__ import annotations

import copy
import importlib
import os

import torch

from ..painter.render.layers import layers_of
from ..painter.render.strategies import DecoderView
from ..painter.engine.canvas import on_paper
from ..painter.engine.latents import image_decoder, image_encoder
from ..painter.engine.plan import LatentFormat, is_plan_file
from ..painter.engine.projection import factors_in_latent_space
from ..painter.tools.taesd import TinyAutoencoder

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


# --- VAE ---------------------------------------------------------------------------------------


def vae_scale(vae) -> int:
    """Pixels per latent pixel of a VAE: ComfyUI's ``spacial_compression_encode()`` (8 for SD,
    SDXL, SD3, Flux.1; 16 for FLUX.2's packed latents), else the ``scale`` of the pack's own
    TAESD, else 8. A wrong guess cannot pass silently: the encoded canvas's shape is checked
    against the plan's."""
    method = getattr(vae, "spacial_compression_encode", None)
    value = method() if callable(method) else getattr(vae, "scale", 8)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1 else 8


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
    ``scale_factor``, ``shift_factor``); ``time_axis`` is whether its latents carry one
    (``latent_dimensions == 3``). ComfyUI's ``latent_rgb_factors``/``_bias`` act on the model's
    internal space (``process_in``), after ``latent_rgb_factors_reshape`` where a format has one
    (Flux.2's 2x2 unpacking); the plan lives in LATENT space, one RGB colour per latent pixel, so
    the factors are carried over through both (:func:`latent_space_rgb`). A format whose factors
    cannot be carried over gets none; the painter then fits them to the connected VAE.
    """
    fmt = model.get_model_object("latent_format")
    channels = int(getattr(fmt, "latent_channels", 0))
    factors, bias = latent_space_rgb(fmt, channels)
    return LatentFormat(
        name=type(fmt).__name__,
        channels=channels,
        scale=float(getattr(fmt, "scale_factor", 1.0)),
        shift=float(getattr(fmt, "shift_factor", 0.0) or 0.0),
        rgb_factors=factors,
        rgb_bias=bias,
        time_axis=format_time_axis(model),
    )


def format_time_axis(model) -> bool:
    """Whether a MODEL's latents carry a time axis (its latent format has 3 dimensions: ``Wan21``,
    ``Wan22``, the video formats); False without a model."""
    if model is None:
        return False
    return int(getattr(model.get_model_object("latent_format"), "latent_dimensions", 2)) == 3


def latent_space_rgb(fmt, channels: int):
    """A ComfyUI latent format's preview factors (``latent_rgb_factors``, ``_bias``, ``_reshape``,
    ``process_in``, ``latent_dimensions``) as ``(factors [C][3], bias [3])`` on LATENT-space latents,
    one colour per latent pixel (painter/engine/projection.factors_in_latent_space); ``(None, None)``
    when it has none or they cannot be carried over."""
    raw = getattr(fmt, "latent_rgb_factors", None)
    if raw is None or channels < 1:
        return None, None
    try:
        carried = factors_in_latent_space(raw, getattr(fmt, "latent_rgb_factors_bias", None), fmt.process_in, channels,
                                          int(getattr(fmt, "latent_dimensions", 2)),
                                          getattr(fmt, "latent_rgb_factors_reshape", None))
    except Exception:  # a format with a process_in or reshape we cannot probe: fitted to the VAE instead
        return None, None
    if carried is None:
        return None, None
    latent_factors, latent_bias = carried
    return (
        tuple(tuple(float(v) for v in row) for row in latent_factors.tolist()),
        tuple(float(v) for v in latent_bias.tolist()),
    )


def latent_out(model, x0: torch.Tensor) -> torch.Tensor:
    """A sampler callback's x0 (model space, on the model device) as a CPU LATENT-space tensor,
    converted like core SamplerCustomAdvanced's ``denoised_output``. On a CPU device the result
    may share memory with the sampler's buffer: copy it before the sampler goes on."""
    return model.model.process_latent_out(x0.detach().to("cpu"))


def guider_model(guider):
    """The MODEL (ModelPatcher) behind a GUIDER."""
    return guider.model_patcher


# --- decoders ---------------------------------------------------------------------------------


def vae_time_axis(vae) -> bool:
    """Whether a VAE takes latents with a time axis (ComfyUI's ``VAE.latent_dim == 3``: the Wan VAE of
    Qwen-Image and Wan, Cosmos, Hunyuan Video); such a VAE crashes on ``[B,C,H,W]``."""
    return getattr(vae, "latent_dim", 2) == 3


def image_decode(vae):
    """``vae.decode`` for image latents ``[n,C,h,w]`` -> ``[n,H,W,3]``: handed to the VAE in the shape it
    expects (a time axis of one for a video VAE), RGBA composited onto the paper (painter/engine/latents.py)."""
    return image_decoder(vae.decode, vae_time_axis(vae))


def image_encode(vae):
    """``vae.encode`` for one image ``[1,H,W,3]`` -> ``[1,C,h,w]`` (a video VAE's one latent frame, squeezed)."""
    return image_encoder(vae.encode)


def decoder_view(vae) -> DecoderView:
    """What the renderer can see of a VAE. The pack's own TAESD and ComfyUI's TAESD family (core
    ``comfy.taesd.taesd.TAESD``, whatever its weights) give their decoder as layers, so
    ``decode: auto`` decodes only what changed; any other VAE gives its ``decode`` only."""
    if isinstance(vae, TinyAutoencoder):  # the pack's own TAESD (tests, demo)
        return vae.decoder_view()
    model = getattr(vae, "first_stage_model", None)
    name = type(model).__name__ if model is not None else type(vae).__name__
    decode = image_decode(vae)
    layers = _taesd_layers(vae, model)
    if isinstance(layers, str):
        return DecoderView(decode=decode, name=name)
    return DecoderView(decode=decode, name=name, layers=layers)


def _taesd_layers(vae, model):
    """Core TAESD's decoder as layers: its ``nn.Sequential`` between what ``VAE.decode`` does before
    it and after it, the same operations in the same order (comfy/sd.py, comfy/taesd/taesd.py in
    0.8.0); or why not. Before: load the VAE through ComfyUI's model management as ``VAE.decode``
    does (:func:`load_vae`; on a GPU the weights may be offloaded until then), then the VAE's dtype
    and device and ``TAESD.decode``'s ``(x - vae_shift) * vae_scale``. After: ``TAESD.decode``'s
    ``x.sub(0.5).mul(2)``, ``VAE.process_output``, ``movedim``, and RGBA onto the paper."""
    decoder = getattr(model, "taesd_decoder", None)
    if not isinstance(decoder, torch.nn.Sequential) or not hasattr(model, "vae_scale") or vae_time_axis(vae):
        return "not a TAESD"
    first = next(decoder.parameters())
    channels = next(m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)).in_channels

    def before(latents):
        load_vae(vae, latents.shape)
        x = latents.to(getattr(vae, "vae_dtype", first.dtype)).to(getattr(vae, "device", first.device))
        return (x - model.vae_shift) * model.vae_scale

    def after(x):
        x = x.sub(0.5).mul(2).to(getattr(vae, "output_device", x.device)).float()
        return on_paper(vae.process_output(x).movedim(1, -1))

    return layers_of(decoder, channels, before=before, after=after)


def load_vae(vae, shape) -> None:
    """What ``VAE.decode`` does before its decoder runs (comfy/sd.py, 0.8.0): load the VAE through
    ComfyUI's model management with the memory a decode of ``shape`` needs, so its weights are on its
    device (a VAE without a patcher, such as the pack's own TAESD, needs none)."""
    patcher = getattr(vae, "patcher", None)
    if patcher is None:
        return
    memory = vae.memory_used_decode(tuple(shape), vae.vae_dtype)
    _host("comfy.model_management").load_models_gpu([patcher], memory_required=memory,
                                                      force_full_load=getattr(vae, "disable_offload", False))


# --- sampling: the core nodes' own functions and the capture patch --------------------------------

# CFGGuider.outer_sample(noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
# disable_pbar=False, seed=None, latent_shapes=None): what an OUTER_SAMPLE wrapper is called with.
_OUTER_SAMPLE_LATENT, _OUTER_SAMPLE_SIGMAS, _OUTER_SAMPLE_CALLBACK = 1, 3, 5
# comfy.patcher_extension.WrappersMP.OUTER_SAMPLE: the key ModelPatcher.wrappers files them under
# (a plain string, so adding a wrapper needs no import).
OUTER_SAMPLE = "outer_sample"


def core_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent, denoise=1.0):
    """Core KSampler's own ``sample`` (``nodes.KSampler``): its LATENT output."""
    node = _host("nodes").KSampler()
    return node.sample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent, denoise=denoise)[0]


def core_sampler_custom_advanced(noise, guider, sampler, sigmas, latent):
    """Core SamplerCustomAdvanced's own ``execute``: its ``output`` LATENT."""
    node = _host("comfy_extras.nodes_custom_sampler").SamplerCustomAdvanced
    return node.execute(noise, guider, sampler, sigmas, latent)[0]


def with_outer_sample_wrapper(model, key: str, wrapper):
    """A clone of ``model`` (a ModelPatcher) that runs ``wrapper(executor, *args, **kwargs)``
    around every sampling run; ``model`` itself is untouched. Clones of the clone share the
    wrapper object (ModelPatcher.clone copies the wrapper lists, not the wrappers)."""
    clone = model.clone()
    clone.add_wrapper_with_key(OUTER_SAMPLE, key, wrapper)
    return clone


def outer_sample_wrappers(model, key: str) -> list:
    """The OUTER_SAMPLE wrappers ``model`` carries under ``key`` (none for a plain model)."""
    wrappers = getattr(model, "wrappers", None)
    if not isinstance(wrappers, dict):
        return []
    return list(wrappers.get(OUTER_SAMPLE, {}).get(key, []))


def guider_with_model(guider, model):
    """A shallow copy of a GUIDER that samples with ``model`` (the guider given is untouched;
    its conditioning, cfg and options are shared, as CFGGuider.sample only reads them)."""
    copied = copy.copy(guider)
    copied.model_patcher = model
    return copied


def sampled_model(executor):
    """The ModelPatcher an OUTER_SAMPLE wrapper's run samples with (the CFGGuider's)."""
    return executor.class_obj.model_patcher


def outer_sample_inputs(args: tuple, kwargs: dict):
    """``(latent_image, sigmas, callback, parts)`` of an OUTER_SAMPLE wrapper's arguments; ``parts``
    is the number of latents packed into one run (more than 1 for multi-part models)."""
    def argument(index, name, default=None):
        return args[index] if len(args) > index else kwargs.get(name, default)

    shapes = kwargs.get("latent_shapes") or (args[8] if len(args) > 8 else None)
    return (argument(_OUTER_SAMPLE_LATENT, "latent_image"), argument(_OUTER_SAMPLE_SIGMAS, "sigmas"),
            argument(_OUTER_SAMPLE_CALLBACK, "callback"), len(shapes) if shapes else 1)


def with_callback(args: tuple, kwargs: dict, callback):
    """The wrapper's arguments with ``callback`` in place of the sampler callback."""
    if len(args) > _OUTER_SAMPLE_CALLBACK:
        args = args[:_OUTER_SAMPLE_CALLBACK] + (callback,) + args[_OUTER_SAMPLE_CALLBACK + 1:]
    else:
        kwargs = {**kwargs, "callback": callback}
    return args, kwargs


def executing_node() -> tuple[str | None, str | None]:
    """``(prompt_id, node_id)`` of the node ComfyUI is executing now; ``(None, None)`` outside a prompt."""
    try:
        context = importlib.import_module("comfy_execution.utils").get_executing_context()
    except (ImportError, AttributeError):
        return None, None
    if context is None:
        return None, None
    return context.prompt_id, context.node_id


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


# --- video outputs ----------------------------------------------------------------------------


def video_from_file(path: str):
    """A core VIDEO (``comfy_api.latest.InputImpl.VideoFromFile``) for a video file, as core
    LoadVideo makes it: read lazily by the node it is given to (Save Video, Get Video Components)."""
    return _host("comfy_api.latest").InputImpl.VideoFromFile(path)


def blocked_output(message: str):
    """An output value that stops every node it is connected to with ``message`` as its error
    (``comfy_execution.graph_utils.ExecutionBlocker``)."""
    return _host("comfy_execution.graph_utils").ExecutionBlocker(message)
