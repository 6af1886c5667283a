"""Samplers that also record the plan: the core sampler nodes' own functions on a captured model.

Each node is the capture patch (nodes/capture.py) plus a call of the core node (``nodes.KSampler``,
``SamplerCustomAdvanced.execute``), so the LATENT output is the core node's for the same inputs,
bit for bit, and no core setup code is copied here. The plan is the one Get Plan would return for
that output (batch item 0).
"""

from __future__ import annotations

from . import host
from .capture import capture, plan_from_capture
from .common import CATEGORY, PLAN, latent_samples, node_error

PLAN_TOOLTIP = (
    "The plan: every step's predicted original (x0) in LATENT space, the sigmas, the final latent and the "
    "model's latent format. Recorded for batch item 0 only (use Capture + Get Plan for another item)."
)

# Our samplers call the core node on a freshly captured model: a run missing from the record
# means the sampling did not go through ComfyUI's CFGGuider.sample (e.g. a guider of another pack).
NOT_SAMPLED = ("the sampling did not go through ComfyUI's guider (CFGGuider.sample); use a core guider, or the "
               "core sampler with Capture + Get Plan")


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
                "latent_image": ("LATENT", {"tooltip": "The latent image to denoise: an image latent [B,C,H,W], or [B,C,1,H,W] (one latent frame, as Qwen-Image and Wan with length 1 use); videos of more latent frames are refused."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "How much to denoise; lower keeps more of the input latent (image to image). Must be above 0 to record a plan."}),
            }
        }

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise=1.0):
        node = type(self)
        latent_samples(latent_image, node, "latent_image")
        if not denoise > 0:
            raise node_error(node, "denoise", "is 0, so nothing is sampled and there is no plan; raise it above 0")
        captured, recorder = capture(model, max_runs=1)
        out = host.core_ksampler(captured, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                 latent_image, denoise)
        return (out, plan_from_capture(recorder, out, 0, node, model_input="model", wiring=NOT_SAMPLED))


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
                "latent_image": ("LATENT", {"tooltip": "The latent image to denoise: an image latent [B,C,H,W], or [B,C,1,H,W] (one latent frame, as Qwen-Image and Wan with length 1 use); videos of more latent frames are refused."}),
            }
        }

    def sample(self, noise, guider, sampler, sigmas, latent_image):
        node = type(self)
        latent_samples(latent_image, node, "latent_image")
        model = host.guider_model(guider)
        captured, recorder = capture(model, max_runs=1)
        out = host.core_sampler_custom_advanced(noise, host.guider_with_model(guider, captured), sampler, sigmas,
                                                latent_image)
        return (out, plan_from_capture(recorder, out, 0, node, model_input="guider", wiring=NOT_SAMPLED))


NODES = (LatentPainterSampler, LatentPainterSamplerCustom)
