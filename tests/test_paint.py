"""The painting engine end to end on real tensors: exact finish, what a chain may touch,
frame counts, determinism, devices and bad input (each engine module has its own test_<module>.py)."""

import math

import pytest
import torch

from latent_painter.painter.engine.actions import REVEALS, Action
from latent_painter.painter.engine.paint import PaintOptions, paint, paint_targets
from latent_painter.painter.engine.plan import PlanError, make_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.engine.limits import LIMITS

MAX_FRAMES = int(LIMITS["frames"].high)
from plans import blurry_to_sharp_plan, replay

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


def test_allowed_channels_are_respected_until_the_clean_up():
    plan = blurry_to_sharp_plan(channels=6)
    stages = (Strokes(channels=(1, 4)), )
    states = replay(plan, stages, PaintOptions(cleanup_frames=3))
    painting_events = [s for s in states if s[0].lead is not None]
    cleanup = [s for s in states if s[0].lead is None and s[0].channels.numel() == 6]
    assert {c for s in painting_events for c in s[0].channels.tolist()} == {1, 4}
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
    with pytest.raises(ValueError, match=r"channels \[7\] are outside this 4-channel latent; use indices 0\.\.3"):
        paint(plan, (Strokes(channels=(7,)),))


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


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Strokes(radii=()), "strokes per schedule must be a whole number from 1"),
        (lambda: Strokes(brush="fan"), "brush 'fan'"),
        (lambda: Strokes(move_cost=-1), "move_cost"),
        (lambda: Strokes(radii=(1, math.inf)), "radius must be a number from 0 to 512"),
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
    with pytest.raises(ValueError, match="frames must be a whole number from 0 to 20000"):
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

