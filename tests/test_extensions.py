"""Extensions plug in through their registries alone (ARCHITECTURE.md "A reviewer's tour"): a reveal
action and a pacing method paint through the nodes like the built-in ones; a stage kind paints in a
chain and round-trips as JSON; a decode strategy is chosen by the decode modes; an output format is
written by the sink and offered by Render."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from nodes_support import run
from plans import blurry_to_sharp_plan

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES
from latent_painter.painter.engine import actions, pacing, stages
from latent_painter.painter.engine.paint import PaintOptions, paint, stages_from_json, stages_to_json
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.engine.timeline import make_event
from latent_painter.painter.render import decoding, sink, strategies, writers
from latent_painter.painter.render.spans import IncrementalStats


def stripes(action, bench, target, allowed, count, schedule):
    """Toy reveal: horizontal bands from the top down, one band a step."""
    _, height, width = bench.canvas.shape
    bounds = torch.linspace(0, height, count + 1).round().long().tolist()
    return [(top, 0, torch.ones(bottom - top, width)) for top, bottom in zip(bounds[:-1], bounds[1:]) if bottom > top]


@pytest.fixture
def toy_reveal(monkeypatch):
    monkeypatch.setitem(actions.REVEALS, "stripes", None)  # so teardown removes the entry again
    return actions.register_reveal("stripes", stripes, 4, "bands sweep down from the top")


@pytest.fixture
def toy_pacing(monkeypatch):
    calls = []

    def by_event_count(events, frames, context):
        """Toy pacing: every event counts the same, whatever its weight or change."""
        calls.append((len(events), frames))
        ones = torch.ones(len(events), dtype=torch.float64)
        return pacing.frame_points(ones, pacing.even_goals(ones, frames))

    monkeypatch.setitem(pacing.PACINGS, "events", None)
    pacing.register_pacing("events", by_event_count, "one frame per event, whatever it changes")
    return calls


def test_a_toy_reveal_paints_through_the_nodes(toy_reveal, progress):
    kinds, options = NODES["LatentPainterAction"].INPUT_TYPES()["required"]["kind"]
    assert "stripes" in kinds and "bands sweep down" in options["tooltip"]
    assert "stripes (bands sweep down from the top)" in NODES["LatentPainterAction"].DESCRIPTION
    assert "stripes 4" in NODES["LatentPainterAction"].INPUT_TYPES()["required"]["frames"][1]["tooltip"]

    (chain,) = run("LatentPainterAction", kind="stripes", frames=0, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0)
    assert stages_from_json(stages_to_json(chain)) == chain
    plan = blurry_to_sharp_plan(steps=3)
    frames, stroke_map, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=0, pacing="strokes",
                                    cleanup_frames=2, seed=0)
    latents = frames["samples"]
    assert count == 1 + 3 * 4  # 4 bands per schedule, nothing left for the clean-up
    assert torch.equal(latents[-1], plan.final)
    # the first band of the first schedule is the top quarter: it moved, the rest did not
    changed = (latents[1] != latents[0]).any(0)
    assert changed[:4].all() and not changed[4:].any()
    assert torch.equal(latents[4], plan.targets[0])  # the schedule's four bands cover the canvas


def test_a_toy_pacing_paints_through_the_paint_node(toy_pacing, progress):
    pacings, options = NODES["LatentPainterPaint"].INPUT_TYPES()["required"]["pacing"]
    assert "events" in pacings and "events: one frame per event" in options["tooltip"]

    (chain,) = run("LatentPainterAction", kind="fade", frames=3, channels="", motivation=0.0, block=2.0,
                   fraction=1.0, schedules=0)
    plan = blurry_to_sharp_plan(steps=4)
    frames, _, count, _ = run("LatentPainterPaint", plan=plan, painter=chain, frames=7, pacing="events",
                           cleanup_frames=2, seed=0)
    assert toy_pacing == [(12, 7)]  # 4 schedules x 3 fade steps, asked for 7 frames
    assert count == 7 and torch.equal(frames["samples"][-1], plan.final)
    # one frame every two events: frame 3 falls after event 6, the last fade step of the second schedule
    assert torch.equal(frames["samples"][3], plan.targets[1])


# --- a stage, a decode strategy and an output format: one definition and one registry line each -----


@dataclass(frozen=True)
class Sweep:
    """Toy stage: the whole schedule in one event that copies the target."""

    channels: tuple[int, ...] = ()
    schedules: int = 0

    def paint(self, bench, targets, target_index, allowed, share):
        _, height, width = bench.canvas.shape
        return [make_event(target_index=target_index, channels=allowed.nonzero().flatten(), top=0, left=0,
                           mask=torch.ones(height, width), canvas=bench.canvas, targets=targets, rgb=bench.rgb)]


@pytest.fixture
def toy_stage(monkeypatch):
    monkeypatch.setitem(stages.STAGES, "Sweep", None)
    return stages.register_stage(Sweep)


def test_a_toy_stage_paints_in_a_chain_and_round_trips_as_json(toy_stage):
    chain = (Strokes(schedules=1), Sweep())
    assert stages_from_json(stages_to_json(chain)) == chain
    plan = blurry_to_sharp_plan(steps=4)
    painting = paint(plan, chain, PaintOptions(pacing="strokes"))
    assert torch.equal(painting.frames[-1], plan.final)
    # after the strokes of schedule 0, each sweep lands exactly on its schedule's target
    assert any(torch.equal(frame, plan.targets[2]) for frame in painting.frames)


@pytest.fixture
def toy_strategy(monkeypatch):
    """Toy strategy: every frame decoded alone, for views named 'toy' only."""
    monkeypatch.setitem(strategies.STRATEGIES, "one by one", None)

    def prepare(view, options, shape):
        if view.name != "toy":
            return "only for the toy decoder"

        def run_(chunks, stats):
            for chunk in chunks:
                stats.frames += chunk.shape[0]
                yield torch.cat([view.decode(frame[None]) for frame in chunk])

        return run_

    strategy = strategies.register_strategy(strategies.Strategy("one by one", prepare, "each frame alone"))
    order = list(strategies.STRATEGIES)
    order.insert(1, order.pop(order.index("one by one")))  # before staged: the order decode modes try
    monkeypatch.setattr(strategies, "STRATEGIES", {name: strategies.STRATEGIES[name] for name in order})
    return strategy


def test_a_toy_strategy_is_chosen_by_the_decode_modes(toy_strategy):
    decoder = lambda latents: torch.sigmoid(latents[:, :3]).repeat_interleave(8, 2).repeat_interleave(8, 3).movedim(1, -1)  # noqa: E731
    latents = torch.randn(5, 4, 6, 6)
    stats = IncrementalStats()
    images = decoding.decode_frames(strategies.DecoderView(decode=decoder, name="toy"), latents, 2, mode="auto",
                                    stats=stats)
    assert stats.strategy == "one by one" and stats.frames == 5
    torch.testing.assert_close(images, decoder(latents), rtol=0, atol=1e-6)
    other = IncrementalStats()
    decoding.decode_frames(strategies.DecoderView(decode=decoder, name="other"), latents, 2, mode="auto", stats=other)
    assert other.strategy == "full" and "one by one: only for the toy decoder" in other.fallback


class RawWriter:
    """Toy format: the frames' bytes one after another."""

    def __init__(self, path, width, height, encoding, metadata=None):
        self.handle = open(path, "wb")

    @staticmethod
    def require():
        pass

    def write(self, frames):
        self.handle.write(frames.contiguous().numpy().tobytes())

    def close(self):
        self.handle.close()

    def abort(self):
        self.handle.close()


def test_a_toy_format_is_written_by_the_sink(monkeypatch, tmp_path):
    monkeypatch.setitem(writers.WRITERS, "raw", RawWriter)
    frames = torch.rand(4, 8, 8, 3)
    rendered = sink.render([[frames]], str(tmp_path / "out.raw"), writers.Encoding("raw", 10.0), hold_last=1)
    played = torch.cat([frames, frames[-1:]])
    assert rendered.frames == 5 and (tmp_path / "out.raw").read_bytes() == writers.to_uint8(played).numpy().tobytes()
    assert "raw" in NODES["LatentPainterRender"].INPUT_TYPES()["required"]["format"][0]


def test_the_registries_are_clean_again():
    """Runs last: every toy above was registered for its test alone."""
    assert list(actions.REVEALS) == ["fade", "glow", "flip", "dissolve"]
    assert list(pacing.PACINGS) == ["strokes", "change"]
    assert list(stages.STAGES) == ["Strokes", "Action"]
    assert list(strategies.STRATEGIES) == ["full", "staged"]
    assert list(writers.WRITERS) == ["webp", "mp4"]
