"""Shared glue of the node modules: the category, error wording and small input conversions.

Nothing here imports ComfyUI. Errors raised to the user are ``ValueError`` whose message starts
with the node's display name, then names the input and the fix (ARCHITECTURE.md); ComfyUI shows
the message in its error dialog and highlights the node.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from ..painter.engine import gain
from ..painter.engine.limits import widget
from ..painter.engine.pacing import PACINGS
from ..painter.engine.paint import PaintOptions
from ..painter.engine.latents import host_latents, image_latents
from ..painter.engine.plan import Plan, check_latent
from ..painter.engine.stages import is_stage
from ..painter.render.spans import IncrementalOptions
from ..painter.render.strategies import DECODE_MODES
from . import host

CATEGORY = "latent painter"

# Our own socket types. Values of these types never leave the pack's nodes.
PLAN = "LATENT_PLAN"
PAINTER = "PAINTER"
# A painting's stroke maps (coverage, this frame's strokes, their channels): painter.output.StrokeMaps.
STROKE_MAPS = "STROKE_MAPS"
STROKE_MAPS_TOOLTIP = (
    "The painting's full stroke maps (cumulative coverage, each frame's strokes and the latent channel they painted), "
    "for Decode Frames' stroke_maps input: a side-by-side map with the strokes coloured by channel, and the soft white "
    "canvas. The stroke_map MASK carries the coverage only."
)

def node_error(node, input_name: str | None, message: str) -> ValueError:
    """``ValueError('<Display Name>: <input>: <message>')`` for a problem the node itself found."""
    where = node.DISPLAY_NAME + (f": {input_name}" if input_name else "")
    return ValueError(f"{where}: {message}")


@contextmanager
def reporting(node, input_name: str | None = None):
    """Re-raise engine errors (``PlanError``, ``ValueError``) with the node's display name in front.

    Anything else (interrupts, out-of-memory, bugs) passes through untouched, so ComfyUI still
    treats an interrupt as an interrupt.
    """
    try:
        yield
    except ValueError as error:
        message = str(error)
        if message.startswith(node.DISPLAY_NAME + ":"):
            raise
        raise node_error(node, input_name, message) from error


def parse_channels(text: str, node) -> tuple[int, ...]:
    """:func:`painter.gain.parse_channels` with the node's name on its errors."""
    with reporting(node):
        return gain.parse_channels(text)


def first_item(latent, node, input_name: str):
    """``latent["samples"][0]`` of a LATENT dict as ``[C,H,W]``, refusing anything that is not an image latent batch."""
    samples = latent_samples(latent, node, input_name)
    return samples[0]


def latent_samples(latent, node, input_name: str):
    """The ``samples`` of a LATENT dict as image latents ``[B,C,H,W]`` (see :func:`image_samples`)."""
    return image_samples(latent, node, input_name)[0]


def image_samples(latent, node, input_name: str):
    """``(samples as [B,C,H,W], whether they came as [B,C,1,H,W])`` of a LATENT dict. A time axis of one
    is an image (Qwen-Image and other Wan-VAE image models); nested latents and videos (T > 1) are
    refused by name (painter/engine/latents.py)."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if samples is None or not hasattr(samples, "dim"):
        raise node_error(node, input_name, "expected a LATENT (a dict with 'samples'); connect a latent output")
    if getattr(samples, "is_nested", False):
        raise node_error(node, input_name, "nested (multi-part) latents are not supported; use an image latent")
    with reporting(node, input_name):
        samples, time_axis = image_latents(samples)
    if samples.dim() != 4 or samples.shape[0] == 0:
        raise node_error(node, input_name, f"expected image latents [B,C,H,W] or [B,C,1,H,W], got shape "
                                           f"{tuple(samples.shape)}")
    # Floating point, not empty, no NaN/inf: what every painter function and VAE needs. Checked here
    # so a diverged sampler's NaNs are named at the node that received them, not decoded into black frames.
    with reporting(node, input_name):  # float32 as every node computes (the same tensor when it is already)
        samples = check_latent(samples, "the latent", dims=4)
    return samples, time_axis


def latent_output(latents, time_axis: bool) -> dict:
    """A LATENT dict of painted latents ``[N,C,H,W]`` in the host's shape (``[N,C,1,H,W]`` with a time axis)."""
    return {"samples": host_latents(latents, time_axis)}


def field_default(cls, name: str):
    """The engine's default of a dataclass field, so widgets and engine never disagree."""
    return cls.__dataclass_fields__[name].default


def painter_chain(value, node, input_name: str):
    """``value`` if it is a PAINTER (a non-empty tuple of registered stages), else a clear error."""
    if not isinstance(value, tuple) or not value or not all(is_stage(s) for s in value):
        raise node_error(node, input_name, "is not a painter chain; connect a Painter or Painter Action output")
    return value


def plan_input(value, node, input_name: str = "plan") -> Plan:
    """``value`` if it is a LATENT_PLAN, else a clear error."""
    if not isinstance(value, Plan):
        raise node_error(
            node, input_name,
            "is not a plan; connect a Get Plan, Latent Painter Sampler, Plan From Latents or Load Plan output",
        )
    return value


def vae_input(value, node, input_name: str = "vae", methods: tuple[str, ...] = ("encode", "decode")):
    """``value`` if it has the ComfyUI VAE ``methods`` the node uses, else a clear error."""
    for method in methods:
        if not callable(getattr(value, method, None)):
            raise node_error(node, input_name, f"is not a VAE (it has no {method}); connect the VAE output of Load "
                                               "Checkpoint or Load VAE")
    return value


def paint_option_inputs(frames_tooltip: str, cleanup_tooltip: str) -> dict:
    """The widgets of :class:`PaintOptions` that Paint and Transition share, in widget order."""
    d = lambda name: field_default(PaintOptions, name)  # noqa: E731 - the engine's defaults
    return {
        "frames": ("INT", widget("frames", default=d("frames"), tooltip=frames_tooltip)),
        "pacing": (list(PACINGS), {"default": d("pacing"),
                                   "tooltip": "; ".join(f"{p.name}: {p.description}" for p in PACINGS.values()) + "."}),
        "cleanup_frames": ("INT", widget("cleanup_frames", default=d("cleanup_frames"), tooltip=cleanup_tooltip)),
        "seed": ("INT", widget("seed", default=d("seed"), control_after_generate=False,
                               tooltip="Seed of the random actions (dissolve); painting is otherwise deterministic.")),
    }


# The optional VAE of Paint and Transition.
CALIBRATION_VAE = ("VAE", {"tooltip": "Needed for pacing 'change' (the default; pacing 'strokes' runs without it): "
                                      "decodes a few probe frames (about one per four frames) so frames fall at equal "
                                      "steps of change as this VAE shows it. No linear estimate can stand in for the "
                                      "decoder: without one, change pacing measured 0.12-0.20 against 0.01 with it "
                                      "(0 = even). ~25% more decoding."})


def pacing_decoder(node, pacing: str, vae):
    """The decoder that change pacing calibrates with: ``vae.decode``, or ``None`` for a pacing
    that needs none. A pacing that decodes refuses to run blind (README "Pacing")."""
    if vae is not None:
        return host.image_decode(vae_input(vae, node, methods=("decode",)))
    if pacing in PACINGS and PACINGS[pacing].decodes:
        raise node_error(node, "vae", f"is not connected, and pacing '{pacing}' needs it: connect the VAE output of "
                                      "Load Checkpoint or Load VAE (the one you decode with), or set pacing to "
                                      "'strokes'")
    return None


def paint_options(node, frames, pacing, cleanup_frames, seed) -> PaintOptions:
    """The widgets' values as :class:`PaintOptions`, refused with the node's name when out of range."""
    with reporting(node):
        return PaintOptions(frames=int(frames), pacing=pacing, cleanup_frames=int(cleanup_frames), seed=int(seed))


# Decode Frames' and Render's decode mode (painter/render/strategies.py).
_BOUND = IncrementalOptions()
DECODE_INPUT = (list(DECODE_MODES), {
    "default": "auto",
    "tooltip": "auto: decode only what changed where the pack promises the bound for this VAE (the TAESD family: "
               f"every frame within {_BOUND.min_psnr:g} dB PSNR of its full decode, the last frame exact; README "
               "'Incremental decoding'), every frame in full otherwise. full: every frame whole. incremental: decode "
               "only what changed with whatever strategy fits this VAE, promised or not. Incremental decoding checks "
               f"one frame in every {_BOUND.check_every} against its full decode and decodes a span that misses again "
               "in full. The node says which way it decoded and how much faster it was."})


def decoding(decode):
    """The decode mode of a Decode Frames or Render input (``auto`` for workflows saved before the
    widget existed; their nodes then decoded in full, and auto gives the same frames within the bound)."""
    return "auto" if decode is None else decode


def report_decoding(node, stats) -> str:
    """One line saying how the frames were decoded and how fast, logged and shown in the node."""
    text = f"{node.DISPLAY_NAME}: decoded {stats.summary()}"
    logging.info("%s", text)
    return text
