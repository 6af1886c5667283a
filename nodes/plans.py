"""Plans from latents, and plans saved to / loaded from ``.safetensors`` files (never pickle)."""

from __future__ import annotations

import os

from dataclasses import replace

from ..painter.engine.limits import LIMITS, widget
from ..painter.engine.picture import ROUGHNESS_DEFAULT, latent_picture_plan, picture_plan, start_sigma
from ..painter.engine.plan import LatentFormat, load_plan, make_plan, plan_file_signature, save_plan
from . import host
from .common import CATEGORY, PLAN, image_samples, latent_samples, node_error, plan_input, reporting, vae_input

DEFAULT_PREFIX = "latent_painter/plan"


class LatentPainterPlanFromLatents:
    DISPLAY_NAME = "Plan From Latents"
    DESCRIPTION = (
        "Builds a plan from any LATENT batch: each latent is one schedule to paint toward, in batch order "
        "(e.g. an existing x0 sequence or a few keyframes). The last one, or 'final' when connected, is where "
        "the painting ends exactly."
    )
    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = (PLAN,)
    RETURN_NAMES = ("plan",)
    OUTPUT_TOOLTIPS = ("The plan: the latents as schedule targets, ending on the final latent.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latents": ("LATENT", {"tooltip": "The schedule targets [T,C,H,W] in painting order (rough first, detailed last)."}),
            },
            "optional": {
                "final": ("LATENT", {"tooltip": "The latent the painting must end on (batch item 0). Default: the last of 'latents'."}),
                "model": ("MODEL", {"tooltip": "The model the latents belong to; records its latent format (channels, scale, "
                                               "shift, RGB preview factors) so plans can be checked for a shared latent space "
                                               "and paced by visible change. Optional."}),
            },
        }

    def build(self, latents, final=None, model=None):
        node = type(self)
        originals, time_axis = image_samples(latents, node, "latents")
        last = None if final is None else latent_samples(final, node, "final")[0]
        latent_format = LatentFormat() if model is None else host.latent_format(model)
        # The host's shape comes back on every latent painted from the plan: a time axis of one when
        # the latents came with one or the model's VAE takes one (its latent format has a time axis).
        latent_format = replace(latent_format, time_axis=time_axis or latent_format.time_axis)
        with reporting(node):
            return (make_plan(originals, last, None, latent_format),)


class LatentPainterPlanFromImage:
    DISPLAY_NAME = "Plan From Image"
    DESCRIPTION = (
        "Makes a rough-to-fine plan from a picture you already have (a photo, an artwork, an old generation), with no "
        "model and no sampling: the picture is blurred back to colour blobs and sharpened again step by step, as a "
        "real run's predictions sharpen, and each step is encoded by the VAE. The painting ends exactly on the "
        "encoded picture. Connect an image and a VAE, or a latent (with the VAE for the best look)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "build"
    RETURN_TYPES = (PLAN,)
    RETURN_NAMES = ("plan",)
    OUTPUT_TOOLTIPS = ("The plan: rough-to-fine predictions of the picture in the VAE's latent space, ending exactly "
                       "on the encoded picture (what VAE Encode gives).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "steps": ("INT", widget("plan steps", default=30,
                                        tooltip="How many schedules the painting has (one per step of the rough-to-fine "
                                                "run). More steps give more stages of detail and take a little longer "
                                                "to encode (one VAE encode per step).")),
                "roughness": ("FLOAT", widget("roughness", default=ROUGHNESS_DEFAULT, step=0.05,
                                              tooltip="How rough the start is: 1 = colour blobs, as a real run's first "
                                                      "steps; 0.5 = a soft blur of the picture; lower starts closer to "
                                                      "the finished picture.")),
            },
            "optional": {
                "image": ("IMAGE", {"tooltip": "The picture to paint (e.g. Load Image). The first image of a batch."}),
                "vae": ("VAE", {"tooltip": "The VAE of the latent space to paint in (any ComfyUI VAE, TAESD, or "
                                           "'pixel_space'): it encodes every step of the plan. Use the VAE you will "
                                           "decode the painting with."}),
                "latent": ("LATENT", {"tooltip": "Instead of an image, or as well: the latent the painting must end on, "
                                                 "exactly (batch item 0). With a VAE it is decoded for the rough-to-fine "
                                                 "run when no image is connected; without a VAE the run happens in "
                                                 "latent space (early frames may show the decoder's texture)."}),
                "model": ("MODEL", {"tooltip": "Optional: the model whose latent space this is; records its latent "
                                               "format, so the plan can join transitions with plans of that model."}),
            },
        }

    def build(self, steps=30, roughness=ROUGHNESS_DEFAULT, image=None, vae=None, latent=None, model=None):
        node = type(self)
        if image is None and latent is None:
            raise node_error(node, "image", "nothing to paint; connect an image (with a VAE) or a latent")
        if not LIMITS["plan steps"].admits(steps):
            raise node_error(node, "steps", f"must be {LIMITS['plan steps'].describe()}, got {steps!r}")
        with reporting(node, "roughness"):
            start_sigma(roughness)
        final, time_axis = (None, False) if latent is None else image_samples(latent, node, "latent")
        final = None if final is None else final[0]
        latent_format = LatentFormat() if model is None else host.latent_format(model)
        # Plans of a video VAE's latent space (Qwen-Image, Wan) paint latents with a time axis of one.
        time_axis = time_axis or latent_format.time_axis or (vae is not None and host.vae_time_axis(vae))
        latent_format = replace(latent_format, time_axis=time_axis)
        if vae is None:
            if image is not None and latent is None:
                raise node_error(node, "vae", "is needed to paint an image: connect the VAE of the model (or Load VAE) "
                                              "whose latent space the painting should be in")
            with reporting(node, "latent"):
                return (latent_picture_plan(final, steps, roughness, latent_format),)
        vae_input(vae, node)
        if image is None:
            with reporting(node, "vae"):
                picture = host.image_decode(vae)(final[None])[0].clamp(0, 1)
        else:
            picture = first_image(image, node)
        report = host.progress(steps + (final is None))
        with reporting(node, "vae"):
            plan = picture_plan(picture[..., :3], host.image_encode(vae), steps=steps, roughness=roughness, final=final,
                                latent_format=latent_format, progress=report)
        return (plan,)


def first_image(image, node):
    """The first image ``[H,W,3]`` of an IMAGE batch, else a clear error."""
    if not hasattr(image, "dim") or image.dim() != 4 or image.shape[0] == 0 or image.shape[-1] < 3:
        shape = tuple(image.shape) if hasattr(image, "shape") else type(image).__name__
        raise node_error(node, "image", f"expected an IMAGE batch [N,H,W,3], got {shape}; connect an image output "
                                        "such as Load Image")
    return image[0, ..., :3]


class LatentPainterSavePlan:
    DISPLAY_NAME = "Save Plan"
    DESCRIPTION = (
        "Saves a plan as a .safetensors file (tensors + JSON metadata, no pickle) in ComfyUI's output folder, "
        "numbered like saved images. Load it again with Load Plan (it is listed there with ' [output]')."
    )
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_TOOLTIPS = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "plan": (PLAN, {"tooltip": "The plan to save."}),
                "filename_prefix": ("STRING", {"default": DEFAULT_PREFIX,
                                               "tooltip": "File name prefix inside the output folder; may contain a subfolder "
                                                          "and %date% style variables like Save Image. A counter and "
                                                          ".safetensors are appended."}),
            }
        }

    def save(self, plan, filename_prefix=DEFAULT_PREFIX):
        node = type(self)
        plan_input(plan, node)
        if not isinstance(filename_prefix, str) or not filename_prefix.strip():
            raise node_error(node, "filename_prefix", "is empty; give a prefix such as latent_painter/plan")
        with reporting(node, "filename_prefix"):
            folder, filename, counter, subfolder = host.save_location(filename_prefix.strip())
        name = f"{filename}_{counter:05}_.safetensors"
        with reporting(node, "plan"):
            save_plan(plan, os.path.join(folder, name))
        listed = "/".join(part for part in (subfolder, name) if part) + host.OUTPUT_TAG
        steps, channels, (height, width) = plan.steps, plan.channels, plan.spatial
        text = f"saved {listed}: {steps} steps, {channels}x{height}x{width}, {plan.latent_format.describe()}"
        return {"ui": {"text": [text]}}


class LatentPainterLoadPlan:
    DISPLAY_NAME = "Load Plan"
    DESCRIPTION = (
        "Loads a plan saved by Save Plan: .safetensors plan files in ComfyUI's input folder, and those in the "
        "output folder (marked ' [output]'). Refresh the page to see newly saved plans."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (PLAN,)
    RETURN_NAMES = ("plan",)
    OUTPUT_TOOLTIPS = ("The loaded plan.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "plan": (host.plan_files(), {"tooltip": "A plan file from the input folder or, marked ' [output]', "
                                                        "from the output folder."}),
            }
        }

    def load(self, plan):
        node = type(self)
        path = host.plan_path(plan)
        if path is None:
            raise node_error(node, "plan", f"no plan file {plan!r}; pick a listed file or save a plan first")
        with reporting(node, "plan"):
            return (load_plan(path),)

    @classmethod
    def IS_CHANGED(cls, plan):
        path = host.plan_path(plan)
        return "missing" if path is None else plan_file_signature(path)

    @classmethod
    def VALIDATE_INPUTS(cls, plan):
        if host.plan_path(plan) is None:
            return f"{cls.DISPLAY_NAME}: plan: no plan file {plan!r}; pick a listed file or save a plan first"
        return True


NODES = (LatentPainterPlanFromLatents, LatentPainterPlanFromImage, LatentPainterSavePlan, LatentPainterLoadPlan)
