"""The painting engine on real tensors: exact finish, what strokes may touch, budgets,
motivation, frame counts, determinism, devices and bad input."""

import math

import pytest
import torch

from latent_painter.painter.actions import REVEALS, Action
from latent_painter.painter.gain import brush_kernel
from latent_painter.painter.paint import (
    PaintOptions,
    assign_schedules,
    generate_events,
    paint,
    paint_targets,
    stages_from_json,
    stages_to_json,
)
from latent_painter.painter.plan import PlanError, make_plan
from latent_painter.painter.stages import Workbench
from latent_painter.painter.strokes import Strokes, paint_schedule
from latent_painter.painter.timeline import MAX_FRAMES, apply_event
from plans import blurry_to_sharp_plan

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
    ["mps"] if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else []
)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("channels", [4, 16, 32])
@pytest.mark.parametrize(
    "stages",
    [
        (Strokes(),),
        (Strokes(brush="soft", move_cost=0.5, switch_cost=0.3),),
        (Strokes(brush="square", channels=(0, 2), motivation=1.5),),
        (Strokes(schedules=3), Action("fade")),
        (Action("glow"),),
        (Action("flip", motivation=1.0),),
        (Action("dissolve", fraction=0.3),),
    ],
    ids=["stroke24", "soft", "square-restricted", "chain", "glow", "flip", "dissolve"],
)
@pytest.mark.parametrize("pacing", ["strokes", "change"])
def test_last_frame_is_the_final_latent_bit_for_bit(device, channels, stages, pacing):
    plan = blurry_to_sharp_plan(channels=channels, seed=channels, device=device)
    painting = paint(plan, stages, PaintOptions(pacing=pacing, seed=7))
    last = painting.frames[-1]
    assert last.device.type == plan.final.device.type
    assert torch.equal(last.view(torch.int32), plan.final.view(torch.int32))
    assert torch.equal(painting.frames[0], torch.zeros_like(plan.final))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_with_a_given_canvas_and_every_seed(seed):
    plan = blurry_to_sharp_plan(seed=seed)
    canvas = torch.randn_like(plan.final)
    painting = paint(plan, (Action("dissolve"),), PaintOptions(seed=seed), canvas=canvas)
    assert torch.equal(painting.frames[0], canvas)
    assert torch.equal(painting.frames[-1], plan.final)


def replay(plan, stages, options=PaintOptions()):
    """Events of a painting with the canvas before each one."""
    canvas = torch.zeros_like(plan.final)
    targets = plan.targets
    events = generate_events(targets, canvas, stages, options)
    states = []
    for event in events:
        before = canvas.clone()
        apply_event(event, canvas, targets)
        states.append((event, before, canvas.clone()))
    return states


def test_a_stroke_changes_only_its_channel_inside_its_footprint():
    plan = blurry_to_sharp_plan(channels=8)
    strokes = [s for s in replay(plan, (Strokes(brush="soft"),)) if s[0].channels.numel() == 1]
    assert len(strokes) > 100
    for event, before, after in strokes:
        changed = (after != before)
        outside = torch.ones_like(changed)
        rows, cols = event.window
        inside = torch.zeros_like(changed[0])
        inside[rows, cols] = event.mask > 0
        outside[int(event.channels)] = ~inside
        assert not (changed & outside).any()
        # and inside the footprint the canvas moved toward the plan, never away
        target = plan.targets[event.target_index]
        assert ((after - target).abs() <= (before - target).abs() + 1e-6).all()


def test_allowed_channels_are_respected_until_the_clean_up():
    plan = blurry_to_sharp_plan(channels=6)
    stages = (Strokes(channels=(1, 4)), )
    states = replay(plan, stages, PaintOptions(cleanup_frames=3))
    painting_events = [s for s in states if s[0].channels.numel() == 1]
    cleanup = [s for s in states if s[0].channels.numel() == 6]
    assert {int(s[0].channels) for s in painting_events} == {1, 4}
    assert len(cleanup) == 3
    before_cleanup = cleanup[0][1]
    for channel in (0, 2, 3, 5):
        assert (before_cleanup[channel] == 0).all()
    for kind in REVEALS:
        for event, before, after in replay(plan, (Action(kind, channels=(2,)),), PaintOptions(cleanup_frames=1))[:-1]:
            untouched = [c for c in range(6) if c != 2]
            assert torch.equal(after[untouched], before[untouched])


def test_out_of_range_channels_name_the_fix():
    plan = blurry_to_sharp_plan(channels=4)
    with pytest.raises(ValueError, match=r"allowed channels \[7\].*0\.\.3"):
        paint(plan, (Strokes(channels=(7,)),))


def test_stroke_budget_per_schedule_and_carry_over():
    plan = blurry_to_sharp_plan(steps=4)
    settings = Strokes(radii=(1, 2, 3))
    targets = plan.targets
    bench = Workbench(torch.zeros_like(plan.final), torch.zeros_like(plan.final), None)
    allowed = torch.ones(4, dtype=torch.bool)
    bench.motivation += targets[0].abs()
    assert len(paint_schedule(settings, bench, targets, 0, allowed, 0.0)) == 3
    assert bench.carried_strokes == 0
    # a schedule whose target is already on the canvas spends nothing and carries its budget
    still = targets.clone()
    still[1] = bench.canvas
    assert paint_schedule(settings, bench, still, 1, allowed, 0.3) == []
    assert bench.carried_strokes == 3
    bench.motivation += (targets[2] - bench.canvas).abs()
    assert len(paint_schedule(settings, bench, targets, 2, allowed, 0.6)) == 6
    assert bench.carried_strokes == 0


def test_motivation_keeps_strokes_where_gain_has_built_up():
    final = torch.zeros(4, 24, 24)
    final[:, 4:8, 4:8] = 1.0  # only one small patch of the plan differs from the blank canvas
    final[:, 16:18, 16:18] = 0.05
    plan = make_plan(torch.stack([final, final]), final)
    stages = (Strokes(radii=(1,) * 24, motivation=1.0, move_cost=0),)
    events = generate_events(plan.targets, torch.zeros_like(final), stages, PaintOptions(cleanup_frames=1))
    strokes = [e for e in events if e.channels.numel() == 1]
    assert strokes
    for event in strokes:
        rows, cols = event.window
        # every stroke lands on a place where the plan differs from the canvas
        assert ((final[0, rows, cols] != 0) & (event.mask > 0)).any()
    weak = sum(1 for e in strokes if e.window[0].start >= 12)
    strong = len(strokes) - weak
    # the patch with 20x the gain is motivated first and takes most strokes
    assert strong > weak
    unmotivated = generate_events(plan.targets, torch.zeros_like(final), (Strokes(radii=(1,) * 24, move_cost=0),),
                                  PaintOptions(cleanup_frames=1))
    assert len(strokes) <= len([e for e in unmotivated if e.channels.numel() == 1])


@pytest.mark.parametrize("frames", [2, 3, 17, 250])
@pytest.mark.parametrize("pacing", ["strokes", "change"])
def test_frame_count_is_as_requested(frames, pacing):
    plan = blurry_to_sharp_plan()
    painting = paint(plan, (Strokes(),), PaintOptions(frames=frames, pacing=pacing))
    assert len(painting) == frames
    assert painting.strokes.shape == (frames, 16, 16)
    assert painting.coverage.shape == (frames, 16, 16)
    assert torch.equal(painting.frames[-1], plan.final)


def test_automatic_frame_count_follows_strokes_per_frame():
    plan = blurry_to_sharp_plan(steps=5)
    one = paint(plan, (Strokes(),), PaintOptions(cleanup_frames=4))
    three = paint(plan, (Strokes(strokes_per_frame=3),), PaintOptions(cleanup_frames=4))
    # 5 schedules x 24 strokes + 4 clean-up steps, plus the initial canvas
    assert len(one) == 1 + 5 * 24 + 4
    assert len(three) == 1 + 5 * 8 + 4
    fade = paint(plan, (Action("fade"),), PaintOptions(cleanup_frames=4))
    assert len(fade) == 1 + 5 * 8  # a fade ends on the final latent: no clean-up needed


def test_painting_is_deterministic():
    plan = blurry_to_sharp_plan(channels=8)
    stages = (Strokes(schedules=2), Action("dissolve", schedules=2), Action("flip"))
    first = paint(plan, stages, PaintOptions(pacing="change", frames=90, seed=3))
    second = paint(plan, stages, PaintOptions(pacing="change", frames=90, seed=3))
    other = paint(plan, stages, PaintOptions(pacing="change", frames=90, seed=4))
    for name in ("frames", "strokes", "channels", "coverage", "schedule"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert not torch.equal(first.frames, other.frames)


def test_change_pacing_spreads_visible_change_evenly():
    plan = blurry_to_sharp_plan(channels=4, size=24, steps=8)
    even = paint(plan, (Strokes(),), PaintOptions(frames=60, pacing="change"))
    counted = paint(plan, (Strokes(),), PaintOptions(frames=60, pacing="strokes"))

    def spread(frames):
        change = (frames[1:] - frames[:-1]).abs().sum((1, 2, 3))
        return float(change.std() / change.mean())

    assert spread(even.frames) < 0.5 * spread(counted.frames)


def test_stroke_maps_record_where_and_which_channel():
    plan = blurry_to_sharp_plan(channels=4)
    painting = paint(plan, (Strokes(channels=(2,)),), PaintOptions(pacing="strokes", cleanup_frames=1))
    painted = painting.channels[1:-1]
    assert set(painted.unique().tolist()) <= {-1, 2}
    assert (painting.channels[-1] == -2).all()  # the clean-up fade touches every channel
    # coverage only grows, and is zero exactly where no frame has marked anything yet
    assert (painting.coverage[1:] >= painting.coverage[:-1] - 1e-6).all()
    assert torch.equal(painting.coverage[0], torch.zeros(16, 16))
    marked = (painting.strokes[: 30] > 0).cumsum(0) > 0
    assert torch.equal(marked, painting.coverage[:30] > 0)


def test_brush_footprints():
    disk = brush_kernel(2, "disk", "cpu")
    assert disk.shape == (5, 5) and disk.sum() == 13
    assert brush_kernel(0, "disk", "cpu").tolist() == [[1.0]]
    assert brush_kernel(1.5, "square", "cpu").sum() == 9
    soft = brush_kernel(4, "soft", "cpu")
    assert soft.shape == (11, 11)
    assert soft[5, 5] == 1 and soft[5, 7] == 1  # full strength in the inner half
    assert 0 < soft[5, 8] < 1 and soft[0, 0] == 0  # falls off toward the rim


def test_chains_assign_schedules_and_serialise():
    stages = (Strokes(schedules=10), Action("fade", schedules=0), Action("glow", schedules=2))
    assert assign_schedules(stages, 30) == [10, 18, 2]
    assert assign_schedules(stages, 11) == [10, 0, 1]
    assert assign_schedules((Strokes(schedules=3),), 5) == [5]
    assert stages_from_json(stages_to_json(stages)) == stages
    with pytest.raises(ValueError, match="unknown settings"):
        stages_from_json([{"painter": "Strokes", "radius": 3}])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Strokes(radii=()), "radii is empty"),
        (lambda: Strokes(brush="fan"), "brush 'fan'"),
        (lambda: Strokes(move_cost=-1), "move_cost"),
        (lambda: Strokes(radii=(1, math.inf)), "radii"),
        (lambda: Strokes(strokes_per_frame=0), "strokes_per_frame"),
        (lambda: Action("spin"), "kind 'spin'"),
        (lambda: Action("dissolve", fraction=0), "fraction"),
        (lambda: PaintOptions(frames=1), "at least 2"),
        (lambda: PaintOptions(pacing="fast"), "pacing"),
    ],
)
def test_bad_settings_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_absurd_frame_counts_are_refused_before_allocating():
    plan = blurry_to_sharp_plan()
    with pytest.raises(ValueError, match="more than"):
        paint(plan, (Strokes(),), PaintOptions(frames=MAX_FRAMES + 1))
    big = make_plan(torch.zeros(2, 32, 256, 256))
    with pytest.raises(ValueError, match="GiB"):
        paint(big, (Action("fade", frames=1),), PaintOptions(frames=MAX_FRAMES))


def test_mismatched_canvas_and_bad_values_are_refused():
    plan = blurry_to_sharp_plan()
    with pytest.raises(PlanError, match="same size and channels"):
        paint(plan, canvas=torch.zeros(4, 8, 8))
    with pytest.raises(PlanError, match="NaN"):
        paint(plan, canvas=torch.full((4, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="chain is empty"):
        paint(plan, ())


def test_progress_reports_and_can_stop_the_painting():
    plan = blurry_to_sharp_plan()
    seen = []
    paint(plan, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][0] == seen[-1][1] and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))

    class Stop(Exception):
        pass

    def stop_half_way(done, total):
        if done > total // 2:
            raise Stop

    with pytest.raises(Stop):
        paint(plan, progress=stop_half_way)


def test_targets_may_live_on_another_plan_length():
    targets = torch.randn(3, 2, 10, 12)
    painting = paint_targets(targets, torch.zeros(2, 10, 12), (Action("glow", frames=3),))
    assert len(painting) == 1 + 3 * 3
    assert torch.equal(painting.frames[-1], targets[-1])


def test_decoder_calibration_evens_out_what_a_nonlinear_decoder_shows():
    plan = blurry_to_sharp_plan(channels=4, size=16, steps=8)

    def decode(latents):  # saturating like a real decoder: changes near zero show most
        return torch.tanh(3 * latents[:, :3]).permute(0, 2, 3, 1)

    def unevenness(painting):
        shown = (decode(painting.frames[1:]) - decode(painting.frames[:-1])).abs().mean((1, 2, 3))
        share = shown.cumsum(0) / shown.sum()
        elapsed = torch.arange(1, len(shown) + 1) / len(shown)
        return float((share - elapsed).abs().max())

    options = PaintOptions(frames=80, pacing="change")
    estimated = paint(plan, (Strokes(),), options)
    calibrated = paint(plan, (Strokes(),), options, decode=decode)
    assert len(calibrated) == 80 and torch.equal(calibrated.frames[-1], plan.final)
    assert unevenness(calibrated) < 0.6 * unevenness(estimated)
