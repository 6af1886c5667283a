"""Capture and Get Plan: record the plan of any sampler node through one model patch.

Capture returns a clone of the model carrying an ``OUTER_SAMPLE`` wrapper: ComfyUI runs it around
every sampling run made with that model (KSampler, KSampler Advanced, SamplerCustom,
SamplerCustomAdvanced, other packs' samplers that use ComfyUI's sampling). The wrapper adds an
observer in front of the run's own callback (previews, progress bar and Cancel keep working) and
changes nothing else, so the sampler's result is bit for bit what it is without the patch.
Get Plan takes the sampler's output latent, finds the recorded run that made it (painter/engine/capture.py)
and returns its plan.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

from ..painter.engine.limits import widget
from ..painter.engine.latents import VideoLatentError, image_latents
from ..painter.engine.picture import land_plan
from ..painter.engine.capture import RunOrigin, RunStore, newest_continued, plan_of_run
from . import host
from .common import CATEGORY, PLAN, latent_samples, node_error, reporting

CAPTURE_KEY = "latent_painter_capture"

# The stores of every live captured model: a run that starts from another run's result (a second
# pass, maybe with another captured model of the same family) links to it when it begins.
_STORES: "weakref.WeakSet[RunStore]" = weakref.WeakSet()


class CaptureWrapper:
    """The OUTER_SAMPLE wrapper of a captured model; holds the model's :class:`RunStore`.

    It has no ``to`` method on purpose: ComfyUI calls ``.to(device)`` on wrappers that have one.
    """

    def __init__(self, max_runs: int | None = None):
        self.store = RunStore() if max_runs is None else RunStore(max_runs)
        _STORES.add(self.store)

    def __deepcopy__(self, memo):
        return self  # a deep-copied model (options) still records into the same store

    def __call__(self, executor, *args, **kwargs):
        latent_image, sigmas, callback, parts = host.outer_sample_inputs(args, kwargs)
        if parts != 1 or getattr(latent_image, "is_nested", False):
            self.store.skipped("it sampled a multi-part latent; Latent Painter paints image latents [B,C,H,W] "
                               "(or [B,C,1,H,W]) only")
            return executor(*args, **kwargs)
        if latent_image.dim() not in (4, 5):
            self.store.skipped(f"it sampled a latent of shape {tuple(latent_image.shape)}, not an image; Latent "
                               "Painter paints image latents [B,C,H,W] (or [B,C,1,H,W]) only")
            return executor(*args, **kwargs)
        try:  # a time axis of one is an image: recorded without it, given back on every painted latent
            start, time_axis = image_latents(latent_image)
        except VideoLatentError as video:
            self.store.skipped(str(video))  # sampled untouched; Get Plan says why there is no plan
            return executor(*args, **kwargs)
        model = host.sampled_model(executor)
        latent_format = replace(host.latent_format(model), time_axis=time_axis)
        session, node_id = host.executing_node()
        previous = newest_continued(start, [run for store in list(_STORES) for run in store.runs], latent_format)
        run = self.store.begin(start, sigmas, latent_format, RunOrigin(session, node_id), previous)

        def observed(step, x0, x, total_steps):
            run.record(step, image_latents(host.latent_out(model, x0))[0])
            if callback is not None:
                return callback(step, x0, x, total_steps)
            return None

        args, kwargs = host.with_callback(args, kwargs, observed)
        try:
            output = executor(*args, **kwargs)
        except BaseException:
            self.store.abandon(run)  # an error or Cancel mid-run leaves no half record
            raise
        run.finish(image_latents(output)[0])
        return output


def capture(model, max_runs: int | None = None):
    """``(captured clone of model, its wrapper)``."""
    wrapper = CaptureWrapper(max_runs)
    return host.with_outer_sample_wrapper(model, CAPTURE_KEY, wrapper), wrapper


GET_PLAN_WIRING = ("connect 'model' to the Capture output that feeds the sampler, and 'latent' to that sampler's "
                   "output (so Get Plan runs after it)")


def plan_from_capture(wrapper: CaptureWrapper, latent, batch_index: int, node, input_name: str = "latent",
                      model_input: str = "model", wiring: str = GET_PLAN_WIRING):
    """The plan of the run recorded by ``wrapper`` that made ``latent`` (a LATENT dict)."""
    samples = latent_samples(latent, node, input_name)
    store = wrapper.store
    if not store.runs:
        why = f" ({store.unsupported})" if store.unsupported else ""
        raise node_error(node, model_input, f"no sampling has been recorded with this model{why}; {wiring}")
    found = store.find(samples)
    if found is None:
        recorded = "; ".join(run.describe() for run in store.runs)
        raise node_error(node, input_name, f"matches none of the {len(store.runs)} sampling runs recorded with this "
                                           f"model ({recorded}); connect the output latent of a sampler that samples "
                                           "with this captured model, unchanged (no latent node in between)")
    run, _ = found
    batch = samples.shape[0]
    if not 0 <= batch_index < batch:
        raise node_error(node, "batch_index", f"{batch_index} is outside the batch of {batch} (0..{batch - 1}); "
                                              "pick an image of the batch")
    with reporting(node):  # the run made no plan (no steps): not one input's fault
        return plan_of_run(run, samples, batch_index)


def captured_wrapper(model, node):
    """The capture wrapper of a captured MODEL, else a clear error."""
    wrappers = [w for w in host.outer_sample_wrappers(model, CAPTURE_KEY) if isinstance(w, CaptureWrapper)]
    if not wrappers:
        raise node_error(node, "model", "is not a captured model; put a Capture node between the model loader and the "
                                        "sampler, and connect its MODEL output here too")
    return wrappers[-1]  # a model captured twice records every run in both


class LatentPainterCapture:
    DISPLAY_NAME = "Capture"
    DESCRIPTION = (
        "Records the plan of every sampler that samples with the returned model (KSampler, KSampler Advanced, "
        "SamplerCustom, SamplerCustomAdvanced, other packs' samplers): each step's predicted original. Put it "
        "between the model loader and the sampler, then take the plan with Get Plan. The sampler's result is "
        "bit for bit what it is without Capture; previews and the progress bar keep working."
    )
    CATEGORY = CATEGORY
    FUNCTION = "capture"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same model, recording every sampling run; connect it to the sampler and to Get Plan.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model whose sampling runs to record (e.g. Load Checkpoint's MODEL)."}),
            }
        }

    def capture(self, model):
        if not hasattr(model, "clone"):
            raise node_error(type(self), "model", "is not a MODEL; connect a model loader's MODEL output")
        captured, _ = capture(model)
        return (captured,)


class LatentPainterGetPlan:
    DISPLAY_NAME = "Get Plan"
    DESCRIPTION = (
        "The plan of a sampling run recorded by Capture: connect the captured model and the sampler's output latent "
        "(this also makes Get Plan run after the sampler). Passes that continue one another (KSampler Advanced base "
        "then refiner, a second pass on the first one's output at the same size) join into one plan; a pass at "
        "another size (hires fix) gives its own plan."
    )
    CATEGORY = CATEGORY
    FUNCTION = "get_plan"
    RETURN_TYPES = (PLAN,)
    RETURN_NAMES = ("plan",)
    OUTPUT_TOOLTIPS = ("The plan: every step's predicted original in LATENT space, the sigmas, the final latent "
                       "(the connected latent's batch item) and the model's latent format.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The captured model: the Capture output that the sampler uses."}),
                "latent": ("LATENT", {"tooltip": "The sampler's output latent, unchanged; it tells which recorded run "
                                                 "to take and ends the plan."}),
            },
            "optional": {
                "batch_index": ("INT", widget("batch_index", default=0,
                                              tooltip="Which image of the sampled batch to paint (0 = the first).")),
                "end_latent": ("LATENT", {"tooltip": "Optional: the latent the painting must end on, exactly, instead of "
                                                     "the sampler's result, e.g. your picture through VAE Encode when the "
                                                     "model re-made it from its inverted noise. The difference is faded "
                                                     "in along the plan, broad first and detail last, so the last frames "
                                                     "do not jump. Same size and latent space as the sampled latent "
                                                     "(item batch_index of a batch, else item 0)."}),
            },
        }

    def get_plan(self, model, latent, batch_index=None, end_latent=None):
        node = type(self)
        wrapper = captured_wrapper(model, node)
        index = 0 if batch_index is None else int(batch_index)
        plan = plan_from_capture(wrapper, latent, index, node)
        if end_latent is None:
            return (plan,)
        ends = latent_samples(end_latent, node, "end_latent")
        with reporting(node, "end_latent"):
            return (land_plan(plan, ends[index if index < ends.shape[0] else 0]),)


NODES = (LatentPainterCapture, LatentPainterGetPlan)
