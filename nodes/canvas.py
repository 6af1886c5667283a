"""Canvas: an encoded flat image (white paper, black, the final image's mean colour, any colour) to paint on."""

from __future__ import annotations

from ..painter.engine.canvas import CANVAS_KINDS, make_canvas, parse_colour
from . import host
from .common import CATEGORY, PLAN, latent_output, node_error, plan_input, reporting, vae_input


class LatentPainterCanvas:
    DISPLAY_NAME = "Canvas"
    DESCRIPTION = (
        "A canvas to paint on: a flat image encoded with the model's VAE, for Paint's 'canvas' input. 'white' paints "
        "on paper the way the author does; strokes get the decoder's own soft edges and the first frame shows no "
        "decoder texture (the all-zero latent decodes to grey-brown or to a grid, depending on the model)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "canvas"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("canvas",)
    OUTPUT_TOOLTIPS = ("The canvas latent [1,C,H,W] (the plan's size and channels; [1,C,1,H,W] when the plan's latents have a time axis of one); connect it to Paint's 'canvas'.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "vae": ("VAE", {"tooltip": "The VAE of the model that made the plan: it encodes the flat image into the "
                                           "plan's latent space (any ComfyUI VAE, TAESD included)."}),
                "plan": (PLAN, {"tooltip": "The plan the canvas is for: it gives the latent size and channels (and, for "
                                           "'flat', the final image whose mean colour is used)."}),
                "kind": (list(CANVAS_KINDS), {"default": "white",
                                              "tooltip": "white: paper, as the author paints on; black; flat: the final "
                                                         "image's mean colour (the calmest start); colour: the 'colour' "
                                                         "below."}),
                "colour": ("STRING", {"default": "#F4EFE4",
                                      "tooltip": "The canvas colour as #RRGGBB hex, used when kind is 'colour' "
                                                 "(e.g. #F4EFE4 cream paper, #202830 slate)."}),
            },
        }

    def canvas(self, vae, plan, kind, colour):
        node = type(self)
        plan = plan_input(plan, node)
        if kind not in CANVAS_KINDS:
            raise node_error(node, "kind", f"{kind!r} is unknown; use one of {', '.join(CANVAS_KINDS)}")
        vae_input(vae, node)
        rgb = None
        if kind == "colour":
            with reporting(node, "colour"):
                rgb = parse_colour(colour)
        with reporting(node, "vae"):
            latent = make_canvas(kind, plan.final, host.image_encode(vae), host.image_decode(vae), colour=rgb,
                                 scale=host.vae_scale(vae))
        return (latent_output(latent[None], plan.latent_format.time_axis),)


NODES = (LatentPainterCanvas,)
