"""Cancel anywhere, in a real ComfyUI (skipped without COMFYUI_PATH; see comfy_host.py).

One painting graph (sampling with plan capture, Save Plan, Paint calibrated by the VAE, Decode
Frames, core Save Animated WEBP and Create Video + Save Video of the frames, Save Latent of the
frames and of the sampled latent; beside it the same sampling through Capture + core KSampler +
Get Plan + Save Plan, and the pack's Render of the frames to MP4) runs once uninterrupted: the
reference. Then, for each node
under test, the same graph with other file name prefixes is queued and cancelled (ComfyUI's
interrupt, POST /interrupt) at a seeded random point of that node: a random delay after it starts
or, as likely for each, on its k-th progress message, k from all but its last report in the
reference run (the cancel is then due while the node still has work to do).
Afterwards:

- the run ended interrupted (or, when the cancel came after the node's last check, complete),
  never with an error;
- nothing partial is left: every file the cancelled run wrote is complete and equal to the
  reference's, and no hidden or temporary file is left anywhere in the output folder;
- the server keeps serving: its queue is idle and the same prompt, queued again, completes;
- that next run gives the reference's result: one file per save node, each equal to the
  reference's (plans and latents by their tensors, WEBP and MP4 by every decoded frame).

ComfyUI keeps the outputs of the last prompt's nodes and reuses them when the inputs match, so a
cancelled node would not run again if the reference had just computed it. Before each cancelled
run the graph without that node, its descendants and the save nodes is queued: the classic cache
then drops the node and everything after it, and keeps the rest (the checkpoint, the prompts,
and for nodes after the samplers their results), so the cancelled node really executes again.

The random points come from ``LATENT_PAINTER_CANCEL_SEED`` (default 13), one per node unless
``LATENT_PAINTER_CANCEL_ROUNDS`` asks for more; each prints its point and where the cancel landed
(``-s`` shows them). A new node is one more entry in ``CASES`` and in :func:`painting_prompt`.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from comfy_host import ComfyHost, outcome

from latent_painter.painter.engine.plan import load_plan

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("LATENT_PAINTER_CANCEL_SEED", "13"))
ROUNDS = int(os.environ.get("LATENT_PAINTER_CANCEL_ROUNDS", "1"))  # random points per node
SIZE = 64
STEPS = 3
FRAMES = 8
ROOT = "lp_cancel"

# save node id -> file name stem, for every file the graph writes
SAVES = {"6": "plan", "10": "anim", "12": "video", "13": "frames", "14": "latent", "18": "capture", "19": "render"}


def painting_prompt(ckpt_name: str, folder: str) -> dict:
    """The painting graph in API format, writing into ``<ROOT>/<folder>/``."""
    prefix = f"{ROOT}/{folder}/"
    sampling = {"model": ["1", 0], "seed": 7, "steps": STEPS, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal",
                "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dawn", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1}},
        "5": {"class_type": "LatentPainterSampler", "inputs": sampling},
        "6": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["5", 1], "filename_prefix": prefix + "plan"}},
        "7": {"class_type": "LatentPainterStrokes", "inputs": {
            "preset": "stroke8", "brush": "disk", "channels": "", "move_cost": 0.1, "switch_cost": 0.0,
            "motivation": 0.0, "size_scale": 0.0, "early_size": 1.0, "strokes_per_frame": 1, "schedules": 0}},
        "8": {"class_type": "LatentPainterPaint", "inputs": {
            "plan": ["5", 1], "painter": ["7", 0], "frames": FRAMES, "pacing": "change", "cleanup_frames": 3, "seed": 0,
            "vae": ["1", 2]}},
        "9": {"class_type": "LatentPainterDecodeFrames", "inputs": {
            "vae": ["1", 2], "frames": ["8", 0], "chunk_size": 2, "white_canvas": True,
            "stroke_map_side_by_side": False, "stroke_map": ["8", 1]}},
        "10": {"class_type": "SaveAnimatedWEBP", "inputs": {
            "images": ["9", 0], "filename_prefix": prefix + "anim", "fps": 8.0, "lossless": True, "quality": 100,
            "method": "fastest"}},
        "11": {"class_type": "CreateVideo", "inputs": {"images": ["9", 0], "fps": 8.0}},
        "12": {"class_type": "SaveVideo", "inputs": {
            "video": ["11", 0], "filename_prefix": prefix + "video", "format": "mp4", "codec": "h264"}},
        "13": {"class_type": "SaveLatent", "inputs": {"samples": ["8", 0], "filename_prefix": prefix + "frames"}},
        "14": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": prefix + "latent"}},
        # the same sampling through Capture + the core KSampler + Get Plan
        "15": {"class_type": "LatentPainterCapture", "inputs": {"model": ["1", 0]}},
        "16": {"class_type": "KSampler", "inputs": {**sampling, "model": ["15", 0]}},
        "17": {"class_type": "LatentPainterGetPlan", "inputs": {"model": ["15", 0], "latent": ["16", 0]}},
        "18": {"class_type": "LatentPainterSavePlan", "inputs": {"plan": ["17", 0], "filename_prefix": prefix + "capture"}},
        # the pack's streaming Render of the same frames (ping-pong: the way back goes through a spill file)
        "19": {"class_type": "LatentPainterRender", "inputs": {
            "frames": ["8", 0], "vae": ["1", 2], "filename_prefix": prefix + "render", "format": "mp4", "fps": 8.0,
            "quality": 80, "hold_first": 0, "hold_last": 0, "pingpong": True, "white_canvas": True,
            "stroke_map_side_by_side": False, "chunk_size": 2, "stroke_map": ["8", 1]}},
    }


@dataclass(frozen=True)
class Case:
    """A node to cancel, a random delay (up to ``delay`` s) after it starts executing or, for
    ``progress`` nodes, as likely on one of its progress messages (all but the last). ``must_land``:
    the cancel is bound to stop this very node (it checks for Cancel at every report, and each
    report takes long enough that the request is there before the next)."""

    name: str
    node: str
    progress: bool
    must_land: bool = False
    delay: float = 0.0


CASES = (
    Case("sampling", "5", progress=True, must_land=True, delay=0.05),
    Case("capture_ksampler", "16", progress=True, must_land=True, delay=0.05),
    Case("save_plan", "6", progress=False, delay=0.05),
    Case("paint", "8", progress=True, delay=0.05),
    Case("decode", "9", progress=True, must_land=True, delay=0.05),
    Case("webp", "10", progress=False, delay=0.05),
    Case("video", "12", progress=False, delay=0.2),
    Case("render", "19", progress=True, delay=0.05),
)


def ancestors(prompt: dict, node: str) -> set[str]:
    found, todo = set(), [node]
    while todo:
        for value in prompt[todo.pop()]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] not in found:
                found.add(value[0])
                todo.append(value[0])
    return found


def descendants(prompt: dict, node: str) -> set[str]:
    return {other for other in prompt if node in ancestors(prompt, other)}


def evict_from_cache(comfy: ComfyHost, prompt: dict, node: str) -> None:
    """Queue the graph without ``node``, what comes after it and the save nodes, plus a core
    PreviewAny of the empty latent (a prompt needs an output): the classic cache keeps the nodes
    of the last prompt only, so ``node`` and all after it are dropped and run again next time,
    while the rest stays cached (nodes in the prompt keep their outputs even when nothing runs
    them)."""
    dropped = {node} | descendants(prompt, node) | set(SAVES)
    kept = {k: v for k, v in prompt.items() if k not in dropped}
    kept["99"] = {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}}
    comfy.queue(kept)


def files_of(comfy: ComfyHost, folder: str) -> dict[str, Path]:
    return {p.name: p for p in sorted((comfy.output_dir / ROOT / folder).glob("*")) if p.is_file()}


def content(comfy: ComfyHost, path: Path):
    """What a file holds, in a form equal for equal results: plans as their tensors and metadata
    (safetensors writes the metadata entries in hash order, so equal plans need not be equal
    bytes), latents as tensors (their metadata is the prompt), animations as the digests of their
    decoded frames."""
    if path.suffix in (".safetensors", ".latent"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key).numpy().tobytes() for key in handle.keys()}
            metadata = handle.metadata() or {}
        return tensors, (metadata if path.suffix == ".safetensors" else None)
    return comfy.decoded_frames(path)


def leftovers(listing: dict[str, int]) -> list[str]:
    """Hidden or temporary files anywhere in the output folder."""
    return [name for name in listing
            if any(part.startswith(".") for part in name.split("/")) or name.endswith((".tmp", ".part", "~"))]


@pytest.fixture(scope="module")
def messages(comfy):
    with comfy.messages() as watched:
        yield watched


@dataclass(frozen=True)
class Reference:
    contents: dict  # file name -> content()
    reports: dict  # node id -> number of progress messages it sent


@pytest.fixture(scope="module")
def reference(comfy, checkpoint_a, messages) -> Reference:
    """The uninterrupted run: the graph's files and their contents, checked to be a real painting,
    and how many progress reports each node sent."""
    start = len(messages.log)
    prompt_id = comfy.submit(painting_prompt(checkpoint_a, "ref"))
    comfy.wait(prompt_id)
    reports = Counter(data["node"] for kind, data in messages.log[start:]
                      if kind == "progress" and data.get("prompt_id") == prompt_id)
    files = files_of(comfy, "ref")
    assert sorted(files) == sorted(f"{stem}_00001_.{ext}" for stem, ext in zip(
        SAVES.values(), ("safetensors", "webp", "mp4", "latent", "latent", "safetensors", "mp4")))
    from safetensors.torch import load_file

    frames = load_file(str(files["frames_00001_.latent"]))["latent_tensor"]
    latent = load_file(str(files["latent_00001_.latent"]))["latent_tensor"]
    plan = load_plan(files["plan_00001_.safetensors"])
    assert frames.shape == (FRAMES, 4, SIZE // 8, SIZE // 8) and plan.steps == STEPS
    assert torch.equal(frames[-1], latent[0]) and torch.equal(plan.final, latent[0])  # ends on the sample
    captured = load_plan(files["capture_00001_.safetensors"])  # Capture + core KSampler record the same plan
    assert torch.equal(captured.originals, plan.originals) and torch.equal(captured.final, plan.final)
    assert len(content(comfy, files["anim_00001_.webp"])) == FRAMES
    assert len(content(comfy, files["video_00001_.mp4"])) == FRAMES
    assert len(content(comfy, files["render_00001_.mp4"])) == 2 * FRAMES - 2  # forward, back without the ends
    assert reports["5"] == reports["16"] == STEPS and all(reports[c.node] >= 2 for c in CASES if c.progress), reports
    return Reference({name: content(comfy, path) for name, path in files.items()}, dict(reports))


def cancel_at_random_point(comfy: ComfyHost, messages, prompt: dict, case: Case, reports: int, rng: random.Random):
    """Queue ``prompt``, cancel it at a random point of ``case.node`` (which sends ``reports``
    progress messages when it runs to the end); return the finished history entry, a
    description of the point and the nodes the run started, in order."""
    report = rng.randint(0, reports - 1) if case.progress else 0
    delay = rng.uniform(0.0, case.delay) if report == 0 else 0.0
    start = len(messages.log)
    prompt_id = comfy.submit(prompt)
    counted = []

    def match(kind, data):
        if data.get("prompt_id") != prompt_id or data.get("node") != case.node:
            return False
        if report == 0:
            return kind == "executing"
        if kind == "progress":
            counted.append(data)
        return len(counted) == report

    seen = messages.wait_for(match, timeout=600, start=start)
    assert seen is not None, f"{case.name}: node {case.node} never sent what the cancel waits for"
    time.sleep(delay)
    comfy.interrupt(prompt_id)
    point = (f"progress report {report} of {reports} ({seen[1]['value']}/{seen[1]['max']})" if report
             else f"start + {delay * 1000:.0f} ms")
    entry = comfy.finished(prompt_id)
    started = [data["node"] for kind, data in messages.log[start:]
               if kind == "executing" and data.get("prompt_id") == prompt_id and data.get("node")]
    return entry, point, started


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cancel_at_a_random_point_leaves_nothing_partial_and_the_rerun_matches(comfy, checkpoint_a, messages,
                                                                              reference, case):
    rng = random.Random(f"{SEED}-{case.name}")
    for number in range(ROUNDS):
        cancel_once(comfy, checkpoint_a, messages, reference, case, rng, case.name + (f"_{number}" if number else ""))


def cancel_once(comfy, checkpoint_a, messages, reference: Reference, case: Case, rng: random.Random, folder: str):
    prompt = painting_prompt(checkpoint_a, folder)
    evict_from_cache(comfy, prompt, case.node)
    before = comfy.output_listing()

    entry, point, started = cancel_at_random_point(comfy, messages, prompt, case, reference.reports.get(case.node, 0),
                                                   rng)
    ended, landed = outcome(entry)
    print(f"\ncancel {case.name} (node {case.node}) at {point}: {ended}"
          + (f" at node {landed} ({prompt[landed]['class_type']})" if landed else ""))
    assert ended in ("interrupted", "success"), comfy.describe_failure(entry)
    if case.must_land:
        assert (ended, landed) == ("interrupted", case.node)
    if ended == "interrupted":
        # the cancel stops the node it was aimed at or one that started after it, never an earlier one
        assert landed in started[started.index(case.node):], (landed, started)

    after = comfy.output_listing()
    assert leftovers(after) == []
    written = sorted(set(after) - set(before))
    assert all(name.startswith(f"{ROOT}/{folder}/") for name in written), written
    partial = {name: path for name, path in files_of(comfy, folder).items()
               if content(comfy, path) != reference.contents[name]}
    assert partial == {}, f"files of the cancelled run that differ from the uninterrupted run: {sorted(partial)}"

    # the server keeps serving: nothing stuck in the queue, and the same prompt runs to the end
    assert comfy.get_json("/system_stats")["system"]
    assert comfy.idle()
    comfy.queue(prompt)
    assert leftovers(comfy.output_listing()) == []
    files = files_of(comfy, folder)
    assert sorted(files) == sorted(reference.contents), "one file per save node, as in the uninterrupted run"
    differing = [name for name, path in files.items() if content(comfy, path) != reference.contents[name]]
    assert differing == [], f"the run after the cancel differs from the uninterrupted run in {differing}"
