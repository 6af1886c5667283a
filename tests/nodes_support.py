"""The thin fake of the host for node tests: nodes/host.py's progress bar, and stand-ins for the
ComfyUI objects the capture touches (a ModelPatcher's wrapper list and latent format, a CFGGuider
running OUTER_SAMPLE wrappers around its sampling, the preview callback)."""

from __future__ import annotations

import torch

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES


def run(node_id, **inputs):
    """What the node's function returns: its outputs, or ``{"ui": ..., "result": outputs}``."""
    instance = NODES[node_id]()
    return getattr(instance, instance.FUNCTION)(**inputs)


def results(node_id, **inputs):
    """The outputs a node hands downstream, as ComfyUI takes them from what :func:`run` returns."""
    returned = run(node_id, **inputs)
    return returned["result"] if isinstance(returned, dict) else returned


class Interrupted(Exception):
    """Like comfy.model_management.InterruptProcessingException: not a ValueError."""


class Progress:
    """Stands in for host.progress: records every report; can raise like Cancel does."""

    def __init__(self, interrupt_after: int | None = None):
        self.reports: list[tuple[int, int]] = []
        self.totals: list[int] = []
        self.interrupt_after = interrupt_after

    def __call__(self, total):
        self.totals.append(total)

        def report(done, of):
            if self.interrupt_after is not None and len(self.reports) >= self.interrupt_after:
                raise Interrupted("cancelled")
            self.reports.append((done, of))

        return report


# --- the host's models and sampling, as thin stand-ins ---------------------------------------


class FakeFormat:
    """A ComfyUI-like latent format: scale and shift, RGB preview factors on the model space."""

    latent_channels = 4
    scale_factor = 0.5
    shift_factor = 0.1
    latent_rgb_factors = [[0.3, 0.2, 0.1], [-0.1, 0.4, 0.0], [0.2, -0.3, 0.5], [0.0, 0.1, -0.2]]
    latent_rgb_factors_bias = [0.05, -0.02, 0.1]
    latent_rgb_factors_reshape = None

    def process_in(self, latent):
        return (latent - self.shift_factor) * self.scale_factor

    def process_out(self, latent):
        return latent / self.scale_factor + self.shift_factor


class FakeModel:
    """The parts of a ComfyUI ModelPatcher the pack uses: the latent format, ``model.process_latent_out``
    and the wrapper list that ``clone`` copies (the wrappers themselves are shared, as in ComfyUI)."""

    def __init__(self, fmt):
        self.fmt = fmt
        self.model = self  # ModelPatcher.model is the BaseModel with process_latent_out
        self.wrappers = {}

    def get_model_object(self, name):
        assert name == "latent_format"
        return self.fmt

    def process_latent_out(self, latent):
        return self.fmt.process_out(latent)

    def clone(self):
        twin = FakeModel(self.fmt)
        twin.wrappers = {kind: {key: list(ws) for key, ws in keyed.items()} for kind, keyed in self.wrappers.items()}
        return twin

    def add_wrapper_with_key(self, kind, key, wrapper):
        self.wrappers.setdefault(kind, {}).setdefault(key, []).append(wrapper)


class Executor:
    """comfy.patcher_extension.WrapperExecutor: calls the next wrapper, the last one the original."""

    def __init__(self, original, class_obj, wrappers, index=0):
        self.original, self.class_obj, self.wrappers, self.index = original, class_obj, wrappers, index

    def __call__(self, *args, **kwargs):
        if self.index == len(self.wrappers):
            return self.original(*args, **kwargs)
        following = Executor(self.original, self.class_obj, self.wrappers, self.index + 1)
        return self.wrappers[self.index](following, *args, **kwargs)


class FakeGuider:
    """comfy.samplers.CFGGuider as far as the capture sees it: ``sample`` runs the model's
    OUTER_SAMPLE wrappers around ``outer_sample`` (positional arguments and ``latent_shapes``, as
    ComfyUI 0.8.0 calls them), and ``outer_sample`` reports ``reports`` (step, model-space x0
    ``[B,C,H,W]``) to the callback through one reused buffer, then returns ``result``."""

    def __init__(self, model_patcher, reports, result, interrupt_at=None):
        self.model_patcher = model_patcher
        self.reports, self.result, self.interrupt_at = reports, result, interrupt_at

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):
        wrappers = [w for keyed in self.model_patcher.wrappers.get("outer_sample", {}).values() for w in keyed]
        return Executor(self.outer_sample, self, wrappers)(
            noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed,
            latent_shapes=[latent_image.shape])

    def outer_sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
                     seed=None, latent_shapes=None):
        buffer = torch.empty_like(self.reports[0][1]) if self.reports else None
        for count, (step, x0) in enumerate(self.reports):
            if count == self.interrupt_at:
                raise Interrupted("cancelled mid-run")
            buffer.copy_(x0)
            if callback is not None:
                callback(step, buffer, buffer * 2.0, len(sigmas) - 1)
        if buffer is not None:
            buffer.fill_(float("nan"))  # what a reused buffer holds afterwards must not leak into the plan
        return self.result


class Previews:
    """The core preview callback (latent_preview.prepare_callback): records what it is called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, step, x0, x, total_steps):
        self.calls.append((step, x0.clone(), x.clone(), total_steps))


# --- the host's Wan-VAE image families (Qwen-Image, Wan with length 1): a time axis of one ----------


class WanLikeFormat(FakeFormat):
    """Like ComfyUI's ``Wan21`` latent format: 16 channels, ``latent_dimensions = 3``, and a per-channel
    mean/std viewed as ``[1,C,1,1,1]``, so ``process_in``/``process_out`` work on 5-D tensors only
    (on 4-D ones they broadcast to a wrong shape, as ComfyUI's do)."""

    latent_channels = 16
    latent_dimensions = 3
    scale_factor = 1.0
    shift_factor = None
    latent_rgb_factors = [[0.02 * c - 0.1, 0.05 * ((c * 7) % 5) - 0.1, 0.03 * ((c * 3) % 7) - 0.09]
                          for c in range(16)]
    latent_rgb_factors_bias = [-0.18, -0.09, -0.34]

    def __init__(self):
        self.latents_mean = torch.linspace(-0.9, 1.5, 16).view(1, 16, 1, 1, 1)
        self.latents_std = torch.linspace(1.1, 3.2, 16).view(1, 16, 1, 1, 1)

    def process_in(self, latent):
        return (latent - self.latents_mean) * self.scale_factor / self.latents_std

    def process_out(self, latent):
        return latent * self.latents_std / self.scale_factor + self.latents_mean


class VideoVAE:
    """A host-free stand-in of ComfyUI's Wan 2.1 VAE (``latent_dim = 3``): ``decode`` takes
    ``[n,C,T,h,w]`` only (4-D crashes, as the real one does) and gives ``[n,T,8h,8w,c]``; ``encode`` of
    one image ``[1,H,W,3]`` gives one latent frame ``[1,C,1,H/8,W/8]``. ``output_channels = 4``
    decodes to RGBA (Qwen-Image 2.1's VAE), the alpha from latent channel 3."""

    latent_dim = 3

    def __init__(self, channels=16, output_channels=3):
        self.channels, self.output_channels = channels, output_channels
        self.decoded_shapes = []

    def decode(self, samples):
        if samples.dim() != 5:
            raise RuntimeError(f"Expected 5D input to conv3d, but got input of size: {list(samples.shape)}")
        self.decoded_shapes.append(tuple(samples.shape))
        images = torch.sigmoid(samples[:, : self.output_channels]).permute(0, 2, 3, 4, 1)  # [n,T,h,w,c]
        return images.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3).contiguous()

    def encode(self, pixels):
        x = pixels.movedim(-1, 1).movedim(1, 0).unsqueeze(0)  # ComfyUI's VAE.encode: the batch becomes time
        pooled = torch.nn.functional.avg_pool3d(x, (1, 8, 8))  # [1,3,T,h,w]
        logits = torch.logit(pooled.clamp(1e-3, 1 - 1e-3))
        extra = torch.linspace(-1, 1, self.channels - 3).view(1, -1, 1, 1, 1) * logits.mean(1, keepdim=True)
        return torch.cat([logits, extra], dim=1)


# --- ComfyUI's VAE with a TAESD inside, and its model management (a recorder) ------------------


class ModelManagement:
    """Stands in for ``comfy.model_management`` as far as a decode touches it: records every
    ``load_models_gpu`` call (the models, memory_required, force_full_load) in order."""

    def __init__(self):
        self.calls = []

    def load_models_gpu(self, models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                        force_full_load=False):
        self.calls.append((tuple(id(m) for m in models), memory_required, force_full_load))


class CoreTAESDModel(torch.nn.Module):
    """``comfy.taesd.taesd.TAESD`` as the pack reads it: ``taesd_decoder`` (an ``nn.Sequential`` of 3x3
    convolutions, activations and nearest upsamplings), ``vae_scale``, ``vae_shift`` and ``decode``."""

    def __init__(self, latent_channels=4, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.taesd_decoder = torch.nn.Sequential(
            torch.nn.Conv2d(latent_channels, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Upsample(scale_factor=2),
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Upsample(scale_factor=2),
            torch.nn.Conv2d(8, 3, 3, padding=1))
        self.vae_scale = torch.nn.Parameter(torch.tensor(1.5))
        self.vae_shift = torch.nn.Parameter(torch.tensor(0.1))

    def decode(self, x):
        return self.taesd_decoder((x - self.vae_shift) * self.vae_scale).sub(0.5).mul(2)


class CoreVAE:
    """``comfy.sd.VAE`` holding a TAESD: ``decode`` does what ComfyUI 0.8.0's does (comfy/sd.py), in its
    order, against the model management it is given: load the patcher with ``memory_used_decode(shape)``
    and ``force_full_load=disable_offload``, then the decoder on ``vae_dtype``/``device`` chunks, then
    ``process_output`` and ``movedim``."""

    latent_dim = 2
    vae_dtype = torch.float32
    device = torch.device("cpu")
    output_device = torch.device("cpu")
    disable_offload = False

    def __init__(self, management, latent_channels=4):
        self.first_stage_model = CoreTAESDModel(latent_channels).eval()
        self.patcher = object()  # the ModelPatcher ComfyUI loads and offloads
        self.management = management

    @staticmethod
    def memory_used_decode(shape, dtype):
        return 2178 * shape[2] * shape[3] * 64 * 4

    @staticmethod
    def process_output(image):
        return torch.clamp((image + 1.0) / 2.0, min=0.0, max=1.0)

    def decode(self, samples_in):
        memory = self.memory_used_decode(samples_in.shape, self.vae_dtype)
        self.management.load_models_gpu([self.patcher], memory_required=memory, force_full_load=self.disable_offload)
        samples = samples_in.to(self.vae_dtype).to(self.device)
        out = self.process_output(self.first_stage_model.decode(samples).to(self.output_device).float())
        return out.movedim(1, -1)


# --- Flux.2 as ComfyUI hands it over (128 channels at 1/16) and pixel space (ChromaRadiance) --------


def flux2_unpack(t):
    """ComfyUI 0.8.0's ``Flux2.latent_rgb_factors_reshape`` (comfy/latent_formats.py), same operations."""
    return t.reshape(t.shape[0], 32, 2, 2, t.shape[-2], t.shape[-1]).permute(0, 1, 4, 2, 5, 3).reshape(
        t.shape[0], 32, t.shape[-2] * 2, t.shape[-1] * 2)


class Flux2LikeFormat(FakeFormat):
    """Like ComfyUI's ``Flux2``: 128 channels, identity process_in/out, 32 rows of factors used after
    unpacking 2x2 (``latent_rgb_factors_reshape``)."""

    latent_channels = 128
    scale_factor = 1.0
    shift_factor = None
    latent_rgb_factors = torch.randn(32, 3, generator=torch.Generator().manual_seed(5)).mul(0.1).tolist()
    latent_rgb_factors_bias = [-0.0329, -0.0718, -0.0851]
    latent_rgb_factors_reshape = staticmethod(flux2_unpack)

    def process_in(self, latent):
        return latent

    def process_out(self, latent):
        return latent


class PixelFormat(Flux2LikeFormat):
    """Like ComfyUI's ``ChromaRadiance``: 3 channels, the identity as preview factors."""

    latent_channels = 3
    latent_rgb_factors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    latent_rgb_factors_bias = None
    latent_rgb_factors_reshape = None


class ScaledVAE:
    """A ComfyUI VAE of ``scale`` pixels per latent pixel (``spacial_compression_encode``): 16 for
    Flux.2's, 1 for the pixel-space "VAE" (comfy.pixel_space_convert: images in -1..1 are the latent)."""

    latent_dim = 2

    def __init__(self, channels, scale):
        self.channels, self.scale = channels, scale

    def spacial_compression_encode(self):
        return self.scale

    def decode(self, samples):
        rgb = ((samples[:, :3] + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
        return rgb.repeat_interleave(self.scale, 1).repeat_interleave(self.scale, 2).contiguous()

    def encode(self, pixels):
        x = torch.nn.functional.avg_pool2d(pixels.movedim(-1, 1) * 2 - 1, self.scale)
        return x.repeat(1, self.channels // 3 + 1, 1, 1)[:, : self.channels]
