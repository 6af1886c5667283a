"""Samplers that also record the plan: every step's predicted original (x0) from the sampler callback.

The LATENT output is exactly what the core node returns for the same inputs (the sampling is the
core code path, see ``host.ksampler`` / ``host.sampler_custom_advanced``); the callback is the
core preview callback, wrapped, so previews, the progress bar and Cancel keep working.
"""

from __future__ import annotations

import torch

from ..painter.plan import plan_from_steps
from . import host
from .common import CATEGORY, PLAN, latent_samples, node_error, reporting

PLAN_TOOLTIP = (
    "The plan: every step's predicted original (x0) in LATENT space, the sigmas, the final latent and the "
    "model's latent format. Recorded for batch item 0 only."
)


class StepRecorder:
    """Collects what the sampler callback reports: ``(step, x0)`` of batch item 0, converted to
    LATENT space on the CPU (the sampler reuses its buffers, so each report is copied)."""

    def __init__(self, model):
        self.model = model
        self.steps: list[int] = []
        self.originals: list[torch.Tensor] = []

    def __call__(self, step, x0) -> None:
        self.steps.append(int(step))
        self.originals.append(host.latent_out(self.model, x0[:1]))

    def plan(self, final: torch.Tensor, sigmas, node):
        with reporting(node, "plan"):
            return plan_from_steps(
                self.steps, self.originals, final, sigmas, host.latent_format(self.model),
                batch_index=0, where=node.DISPLAY_NAME,
            )


class LatentPainterSampler:
    DISPLAY_NAME = "Latent Painter Sampler"
    DESCRIPTION = (
        "KSampler that also records the plan for painting: the model's predicted original at every step. "
        "The latent output is identical to the core KSampler's for the same inputs."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT", PLAN)
    RETURN_NAMES = ("latent", "plan")
    OUTPUT_TOOLTIPS = ("The denoised latent (identical to KSampler's).", PLAN_TOOLTIP)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model used for denoising the input latent."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "The random seed used for creating the noise."}),
                "steps": ("INT", {"default": 20, "min": 1, "max": 10000,
                                  "tooltip": "The number of denoising steps; each step adds one predicted original to the plan."}),
                "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "Classifier-free guidance scale: higher follows the prompt more closely, too high hurts quality."}),
                "sampler_name": (host.sampler_names(), {"tooltip": "The sampling algorithm (as in KSampler)."}),
                "scheduler": (host.scheduler_names(), {"tooltip": "How noise is removed over the steps (as in KSampler)."}),
                "positive": ("CONDITIONING", {"tooltip": "The conditioning describing what to include in the image."}),
                "negative": ("CONDITIONING", {"tooltip": "The conditioning describing what to exclude from the image."}),
                "latent_image": ("LATENT", {"tooltip": "The latent image to denoise (image latents only, no video)."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "How much to denoise; lower keeps more of the input latent (image to image). Must be above 0 to record a plan."}),
            }
        }

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise=1.0):
        latent_samples(latent_image, type(self), "latent_image")
        if not denoise > 0:
            raise node_error(type(self), "denoise", "is 0, so nothing is sampled and there is no plan; raise it above 0")
        recorder = StepRecorder(model)
        out, sigmas = host.ksampler(
            model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise,
            observe=recorder, where=self.DISPLAY_NAME,
        )
        return (out, recorder.plan(out["samples"], sigmas, type(self)))


class LatentPainterSamplerCustom:
    DISPLAY_NAME = "Latent Painter Sampler (Custom)"
    DESCRIPTION = (
        "SamplerCustomAdvanced that also records the plan for painting: the model's predicted original at every "
        "step. Works with every sampler, guider and model family ComfyUI supports for images; the latent output "
        "is identical to SamplerCustomAdvanced's 'output'."
    )
    CATEGORY = CATEGORY
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT", PLAN)
    RETURN_NAMES = ("latent", "plan")
    OUTPUT_TOOLTIPS = ("The denoised latent (identical to SamplerCustomAdvanced's output).", PLAN_TOOLTIP)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "noise": ("NOISE", {"tooltip": "The noise source (e.g. Random Noise); its seed is used."}),
                "guider": ("GUIDER", {"tooltip": "The guider (e.g. CFG Guider, Basic Guider) holding model and conditioning."}),
                "sampler": ("SAMPLER", {"tooltip": "The sampler (e.g. KSampler Select)."}),
                "sigmas": ("SIGMAS", {"tooltip": "The noise schedule (e.g. Basic Scheduler); recorded in the plan."}),
                "latent_image": ("LATENT", {"tooltip": "The latent image to denoise (image latents only, no video)."}),
            }
        }

    def sample(self, noise, guider, sampler, sigmas, latent_image):
        latent_samples(latent_image, type(self), "latent_image")
        model = host.guider_model(guider)
        recorder = StepRecorder(model)
        out = host.sampler_custom_advanced(
            noise, guider, sampler, sigmas, latent_image, observe=recorder, where=self.DISPLAY_NAME
        )
        schedule = sigmas.detach().to("cpu", torch.float32).flatten() if isinstance(sigmas, torch.Tensor) else None
        return (out, recorder.plan(out["samples"], schedule, type(self)))


NODES = (LatentPainterSampler, LatentPainterSamplerCustom)
