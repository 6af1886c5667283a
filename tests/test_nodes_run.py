"""The nodes run on real tensors without ComfyUI: only the functions of nodes/host.py that need the
host (progress bar, folders, the sampling calls) are replaced."""

from __future__ import annotations

import os

import pytest
import torch

from nodes_support import FakeFormat, FakeModel, Interrupted, Progress, results, run
from plans import blurry_to_sharp_plan

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES
from latent_painter.nodes import host
from latent_painter.nodes.common import parse_channels
from latent_painter.painter.engine.paint import PROGRESS_STEPS, PaintOptions, paint, stages_from_json, stages_to_json
from latent_painter.painter.engine.plan import LatentFormat, Plan, make_plan, save_plan


def node(node_id):
    return NODES[node_id]()


def trajectory(steps=6, channels=4, size=16, seed=0):
    """A rough-to-fine sequence of latents ending on a 'final' latent, like an x0 trajectory."""
    plan = blurry_to_sharp_plan(channels=channels, size=size, steps=steps, seed=seed)
    return plan.originals, plan.final


def painter_chain():
    (strokes,) = run("LatentPainterStrokes", preset="stroke12", brush="soft", channels="0,2-3", move_cost=0.1,
                     switch_cost=0.0, motivation=0.0, size_scale=0.0, early_size=1.5, strokes_per_frame=2, schedules=3)
    (chain,) = run("LatentPainterAction", kind="dissolve", frames=4, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0, previous=strokes)
    return chain


class LinearVAE:
    """A host-free decoder with a ComfyUI VAE's decode interface: [n,C,h,w] -> [n,8h,8w,3] in 0..1."""

    def __init__(self):
        self.calls = []

    def decode(self, samples):
        self.calls.append(samples.shape[0])
        rgb = torch.sigmoid(samples[:, :3]).permute(0, 2, 3, 1)
        return rgb.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).contiguous()


# --- the pipeline --------------------------------------------------------------------------------


def test_plan_paint_decode_assemble(progress):
    originals, final = trajectory()
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": originals[:-1]}, final={"samples": final[None]})
    assert isinstance(plan, Plan) and plan.steps == 5 and torch.equal(plan.final, final)

    chain = painter_chain()
    assert [type(stage).__name__ for stage in chain] == ["Strokes", "Action"]
    assert chain[0].channels == (0, 2, 3) and chain[0].schedules == 3
    assert stages_from_json(stages_to_json(chain)) == chain  # a PAINTER is JSON-serialisable

    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=0, pacing="strokes",
                                    cleanup_frames=6, seed=3)
    latents = frames["samples"]
    assert set(frames) == {"samples"}
    assert latents.shape == (count, 4, 16, 16) and count > 20
    assert torch.equal(latents[0], torch.zeros(4, 16, 16))  # the empty canvas
    assert torch.equal(latents[-1], final)  # ends on the final latent bit for bit
    assert stroke_map.shape == (count, 16, 16) and stroke_map.dtype == torch.float32
    assert float(stroke_map.min()) == 0.0 and float(stroke_map.max()) == 1.0
    assert float(stroke_map[0].max()) == 0.0  # nothing painted on the first frame
    assert torch.all(stroke_map[1:] >= stroke_map[:-1])  # coverage only grows
    assert progress.totals == [PROGRESS_STEPS]
    done = [d for d, _ in progress.reports]
    assert done == sorted(done) and done[-1] == PROGRESS_STEPS

    vae = LinearVAE()
    (images,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=7, white_canvas=True,
                    stroke_map_side_by_side=True, stroke_map=stroke_map)
    assert images.shape == (count, 128, 256, 3)
    chunks = [7] * (count // 7) + ([count % 7] if count % 7 else [])
    if chunks[-1] > 1:  # the last frame is decoded alone: the same tensor as decoding the final latent
        chunks[-1:] = [chunks[-1] - 1, 1]
    assert vae.calls == chunks
    assert torch.all(images[0, :, :128] == 1.0)  # untouched paper is white
    assert torch.allclose(images[-1, :, :128], LinearVAE().decode(final[None])[0])  # final frame unmasked
    assert torch.all(images[0, :, 128:] == 0.0) and float(images[-1, :, 128:].max()) > 0.9  # the map: black to grey

    (movie, fps) = run("LatentPainterAssembleFrames", images=images, hold_first=2, hold_last=5, pingpong=False,
                       fps=24.0, duration_seconds=0.0, more_images=images[-1:].clone())
    assert movie.shape == (count + 2 + 5, 128, 256, 3)  # the repeated join frame is kept once
    assert fps == 24.0 and isinstance(fps, float)
    assert torch.equal(movie[0], images[0]) and torch.equal(movie[-1], images[-1])
    (loop, fps) = run("LatentPainterAssembleFrames", images=images, hold_first=0, hold_last=0, pingpong=True,
                      fps=24.0, duration_seconds=10.0)
    assert loop.shape[0] == 2 * count - 2
    assert fps == pytest.approx((2 * count - 2) / 10.0)


def test_paint_fixed_frames_from_a_canvas(progress):
    originals, final = trajectory(steps=4)
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": originals})
    (chain,) = run("LatentPainterStrokes", preset="stroke24", brush="disk", channels="", move_cost=0.1, switch_cost=0.0,
                   motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    canvas = torch.full((2, 4, 16, 16), 0.25)
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=30, pacing="strokes",
                                    cleanup_frames=4, seed=0, canvas={"samples": canvas})
    assert count == 30 and frames["samples"].shape[0] == 30 and stroke_map.shape[0] == 30
    assert torch.equal(frames["samples"][0], canvas[0])
    assert torch.equal(frames["samples"][-1], final)


def test_plan_from_latents_records_the_model_format():
    originals, _ = trajectory(steps=3)
    model = FakeModel(FakeFormat())
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": originals}, model=model)
    assert plan.latent_format.name == "FakeFormat" and plan.latent_format.scale == 0.5
    assert plan.latent_format.rgb_factors is not None


def test_paint_interrupt_stops_cleanly(monkeypatch):
    monkeypatch.setattr(host, "progress", Progress(interrupt_after=3))
    originals, _ = trajectory()
    plan = make_plan(originals)
    with pytest.raises(Interrupted):  # passed through untouched, not turned into a ValueError
        run("LatentPainterPaint", plan=plan, painter=painter_chain(), frames=0, pacing="strokes", cleanup_frames=4, seed=0)


def test_decode_interrupt_stops_cleanly(monkeypatch):
    monkeypatch.setattr(host, "progress", Progress(interrupt_after=1))
    vae = LinearVAE()
    with pytest.raises(Interrupted):
        run("LatentPainterDecodeFrames", vae=vae, frames={"samples": torch.zeros(10, 4, 4, 4)}, chunk_size=3,
            white_canvas=False, stroke_map_side_by_side=False)
    assert vae.calls == [3, 3]  # stopped after the second chunk's report


# --- save and load ---------------------------------------------------------------------------


@pytest.fixture
def folders(monkeypatch, tmp_path):
    inputs, outputs = tmp_path / "input", tmp_path / "output"
    inputs.mkdir()
    outputs.mkdir()
    monkeypatch.setattr(host, "input_directory", lambda: str(inputs))
    monkeypatch.setattr(host, "output_directory", lambda: str(outputs))

    def save_location(prefix):  # folder_paths.get_save_image_path's numbering, enough for the test
        subfolder, filename = os.path.split(os.path.normpath(prefix))
        folder = os.path.join(str(outputs), subfolder)
        os.makedirs(folder, exist_ok=True)
        taken = [name for name in os.listdir(folder) if name.startswith(filename + "_")]
        return folder, filename, len(taken) + 1, subfolder

    monkeypatch.setattr(host, "save_location", save_location)
    return inputs, outputs


def test_save_and_load_round_trip(folders):
    inputs, outputs = folders
    originals, final = trajectory(steps=3)
    latent_format = LatentFormat(name="SD15", channels=4, scale=0.18215, rgb_factors=((0.1, 0.2, 0.3),) * 4, rgb_bias=(0.0, 0.1, 0.2))
    plan = make_plan(originals, final, torch.tensor([14.6, 3.0, 0.5]), latent_format)

    result = run("LatentPainterSavePlan", plan=plan, filename_prefix="latent_painter/plan")
    assert result["ui"]["text"][0].startswith("saved latent_painter/plan_00001_.safetensors [output]: 3 steps, 4x16x16, SD15")
    run("LatentPainterSavePlan", plan=plan, filename_prefix="latent_painter/plan")
    assert sorted(os.listdir(outputs / "latent_painter")) == ["plan_00001_.safetensors", "plan_00002_.safetensors"]
    (outputs / "latent_painter" / "not_a_plan.safetensors").write_bytes(b"junk")  # never listed
    save_plan(make_plan(originals * 2), inputs / "mine.safetensors")

    load = NODES["LatentPainterLoadPlan"]
    listed = load.INPUT_TYPES()["required"]["plan"][0]
    assert listed == [
        "mine.safetensors",
        "latent_painter/plan_00001_.safetensors [output]",
        "latent_painter/plan_00002_.safetensors [output]",
    ]
    name = listed[1]
    assert load.VALIDATE_INPUTS(plan=name) is True
    (loaded,) = run("LatentPainterLoadPlan", plan=name)
    assert torch.equal(loaded.originals, plan.originals) and torch.equal(loaded.final, plan.final)
    assert torch.equal(loaded.sigmas, plan.sigmas) and loaded.latent_format == plan.latent_format
    (mine,) = run("LatentPainterLoadPlan", plan="mine.safetensors")
    assert torch.equal(mine.originals, originals * 2)

    fingerprint = load.IS_CHANGED(plan=name)
    assert fingerprint == load.IS_CHANGED(plan=name)
    save_plan(make_plan(originals + 1), outputs / "latent_painter" / "plan_00001_.safetensors")
    assert load.IS_CHANGED(plan=name) != fingerprint


def test_load_refuses_missing_foreign_and_outside_files(folders):
    inputs, outputs = folders
    load = NODES["LatentPainterLoadPlan"]
    message = load.VALIDATE_INPUTS(plan="gone.safetensors")
    assert isinstance(message, str) and message.startswith("Load Plan: plan:") and "gone.safetensors" in message
    with pytest.raises(ValueError, match=r"^Load Plan: plan: no plan file"):
        run("LatentPainterLoadPlan", plan="gone.safetensors")
    (outputs.parent / "secret.safetensors").write_bytes(b"x")
    assert load.VALIDATE_INPUTS(plan="../secret.safetensors") is not True
    (inputs / "foreign.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}              ")
    with pytest.raises(ValueError, match=r"^Load Plan: plan: .*foreign\.safetensors"):
        run("LatentPainterLoadPlan", plan="foreign.safetensors")


# --- decoding with the real TAESD -------------------------------------------------------------


def test_decode_frames_with_real_taesd(progress, taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    vae = TinyAutoencoder.from_folder(taesd_folder, name="taef2")
    originals, final = trajectory(steps=4, channels=vae.latent_channels, size=8, seed=1)
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": originals})
    (chain,) = run("LatentPainterAction", kind="glow", frames=3, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0)
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=0, pacing="strokes",
                                    cleanup_frames=2, seed=0)
    (plain,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=5, white_canvas=False,
                   stroke_map_side_by_side=False)
    assert plain.shape == (count, 64, 64, 3) and 0.0 <= float(plain.min()) and float(plain.max()) <= 1.0
    assert torch.allclose(plain, vae.decode(frames["samples"]), atol=1e-5)  # chunking changes nothing
    assert progress.totals == [PROGRESS_STEPS, count] and progress.reports[-1] == (count, count)

    (white,) = results("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=4, white_canvas=True,
                   stroke_map_side_by_side=True, stroke_map=stroke_map)
    assert white.shape == (count, 64, 128, 3)
    assert torch.all(white[0, :, :64] == 1.0)  # blank paper
    assert torch.allclose(white[-1, :, :64], plain[-1])  # the finished image, unmasked


def test_paint_calibrates_change_pacing_with_a_connected_vae(progress, taesd_folder):
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    vae = TinyAutoencoder.from_folder(taesd_folder, name="taef2")
    decoded = []

    class CountingVae:
        def decode(self, samples):
            decoded.append(samples.shape[0])
            return vae.decode(samples)

    originals, _ = trajectory(steps=4, channels=vae.latent_channels, size=8, seed=2)
    (plan,) = run("LatentPainterPlanFromLatents", latents={"samples": originals})
    (chain,) = run("LatentPainterStrokes", preset="stroke24", brush="disk", channels="", move_cost=0.1, switch_cost=0.0,
                   motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    # One canvas for both runs (the VAE would otherwise also choose the default canvas), so only pacing differs.
    inputs = dict(plan=plan, painter=chain, frames=41, pacing="change", cleanup_frames=4, seed=0,
                  canvas={"samples": torch.zeros(1, *originals.shape[1:])})
    with pytest.raises(ValueError, match="^Paint: vae: is not connected, and pacing 'change' needs it"):
        run("LatentPainterPaint", **inputs)
    assert decoded == []
    plain = {"samples": paint(plan, chain, PaintOptions(frames=41, pacing="change", cleanup_frames=4),
                              inputs["canvas"]["samples"][0]).frames}  # the engine's estimate alone
    calibrated, _, count, _ = run("LatentPainterPaint", **inputs, vae=CountingVae())
    assert count == 41 and torch.equal(calibrated["samples"][-1], originals[-1])
    # a plan from bare latents has no preview factors: first they are fitted to the VAE on the
    # canvas and the 4 targets (issue 10), then the probe frames (one per four frames) and the first canvas
    assert decoded[0] == 5 and sum(decoded) == 5 + 11
    assert not torch.equal(calibrated["samples"], plain["samples"])  # the frames moved


def test_latent_format_without_usable_rgb_factors():
    class Mixed(FakeFormat):  # a "reshape" that mixes channels is no rearrangement
        latent_rgb_factors_reshape = staticmethod(lambda x: x + x.roll(1, dims=1))

    class NotAffine(FakeFormat):
        def process_in(self, latent):
            return latent**3

    class NoFactors(FakeFormat):
        latent_rgb_factors = None

    for fmt in (Mixed(), NotAffine(), NoFactors()):
        recorded = host.latent_format(FakeModel(fmt))
        assert recorded.rgb_factors is None and recorded.rgb_bias is None and recorded.channels == 4


# --- bad inputs name the node, the input and the fix --------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("", ()), ("all", ()), ("3", (3,)), ("0,2-3", (0, 2, 3)), (" 5, 1 ;1-2 ", (1, 2, 5)), ("0-0", (0,))],
)
def test_parse_channels(text, expected):
    assert parse_channels(text, NODES["LatentPainterStrokes"]) == expected


@pytest.mark.parametrize("text", ["a", "3-1", "-2", "1-", "0,x-3", "5000"])
def test_parse_channels_refuses(text):
    with pytest.raises(ValueError, match=r"^Painter: channels: .*0,2-3"):
        parse_channels(text, NODES["LatentPainterStrokes"])


def test_bad_inputs_name_the_node(progress):
    originals, final = trajectory(steps=3)
    plan = make_plan(originals)
    chain = painter_chain()
    paint = dict(plan=plan, painter=chain, frames=0, pacing="strokes", cleanup_frames=2, seed=0)

    with pytest.raises(ValueError, match=r"^Paint: .*frames must be 0 \(automatic\) or at least 2"):
        run("LatentPainterPaint", **{**paint, "frames": 1})
    with pytest.raises(ValueError, match=r"^Paint: .*initial canvas has shape"):
        run("LatentPainterPaint", **paint, canvas={"samples": torch.zeros(1, 4, 8, 8)})
    with pytest.raises(ValueError, match=r"^Paint: painter: is not a painter chain"):
        run("LatentPainterPaint", **{**paint, "painter": ()})
    with pytest.raises(ValueError, match=r"^Paint: plan: is not a plan"):
        run("LatentPainterPaint", **{**paint, "plan": {"samples": originals}})
    (far,) = run("LatentPainterStrokes", preset="stroke8", brush="disk", channels="7", move_cost=0.0, switch_cost=0.0,
                 motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    with pytest.raises(ValueError, match=r"^Paint: stage 1 of the chain \(Strokes\): channels \[7\] are outside this 4-channel latent"):
        run("LatentPainterPaint", **{**paint, "painter": far})

    with pytest.raises(ValueError, match=r"^Painter: .*early_size"):
        run("LatentPainterStrokes", preset="stroke24", brush="disk", channels="", move_cost=0.0, switch_cost=0.0,
            motivation=0.0, size_scale=0.0, early_size=0.0, strokes_per_frame=1, schedules=0)
    with pytest.raises(ValueError, match=r"^Painter: preset: unknown preset"):
        run("LatentPainterStrokes", preset="stroke99", brush="disk", channels="", move_cost=0.0, switch_cost=0.0,
            motivation=0.0, size_scale=0.0, early_size=1.0, strokes_per_frame=1, schedules=0)
    with pytest.raises(ValueError, match=r"^Painter Action: fraction must be a number above 0 and at most 1"):
        run("LatentPainterAction", kind="dissolve", frames=0, channels="", motivation=0.0, block=2.0, fraction=0.0, schedules=0)
    with pytest.raises(ValueError, match=r"^Painter Action: previous: is not a painter chain"):
        run("LatentPainterAction", kind="fade", frames=0, channels="", motivation=0.0, block=2.0, fraction=1.0,
            schedules=0, previous="stroke24")

    with pytest.raises(ValueError, match=r"^Save Plan: plan: is not a plan"):
        run("LatentPainterSavePlan", plan={"samples": originals}, filename_prefix="x")

    bad = originals.clone()
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"^Plan From Latents: .*NaN/inf"):
        run("LatentPainterPlanFromLatents", latents={"samples": bad})
    with pytest.raises(ValueError, match=r"^Plan From Latents: .*final latent has shape"):
        run("LatentPainterPlanFromLatents", latents={"samples": originals}, final={"samples": torch.zeros(1, 4, 8, 8)})
    with pytest.raises(ValueError, match=r"^Plan From Latents: latents: this is a video latent"):
        run("LatentPainterPlanFromLatents", latents={"samples": torch.zeros(1, 4, 2, 8, 8)})

    frames = {"samples": torch.zeros(3, 4, 4, 4)}
    with pytest.raises(ValueError, match=r"^Decode Frames: stroke_maps: white_canvas needs them; connect Paint's stroke_maps"):
        run("LatentPainterDecodeFrames", vae=LinearVAE(), frames=frames, chunk_size=2, white_canvas=True,
            stroke_map_side_by_side=False)
    with pytest.raises(ValueError, match=r"^Decode Frames: .*coverage has shape"):
        run("LatentPainterDecodeFrames", vae=LinearVAE(), frames=frames, chunk_size=2, white_canvas=True,
            stroke_map_side_by_side=False, stroke_map=torch.zeros(2, 4, 4))

    with pytest.raises(ValueError, match=r"^Assemble Frames: segment 2 has frames of"):
        run("LatentPainterAssembleFrames", images=torch.zeros(2, 8, 8, 3), hold_first=0, hold_last=0, pingpong=False,
            fps=24.0, duration_seconds=0.0, more_images=torch.zeros(2, 16, 8, 3))
    with pytest.raises(ValueError, match=r"^Assemble Frames: hold_first must be a whole number from 0 to 100000"):
        run("LatentPainterAssembleFrames", images=torch.zeros(2, 1, 1, 3), hold_first=10**6, hold_last=0,
            pingpong=False, fps=24.0, duration_seconds=0.0)
