"""Transitions: exact endpoints, depth, guidance, ping-pong, chains, refused pairs."""

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.actions import Action
from latent_painter.painter.engine.paint import PaintOptions
from latent_painter.painter.engine.plan import LatentFormat, PlanError, make_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.engine.transition import Route, interpolate, route_targets, transition


def with_format(plan, fmt):
    return make_plan(plan.originals, plan.final, plan.sigmas, fmt)


SD15 = LatentFormat("SD15", 4, 0.18215, 0.0)
SDXL = LatentFormat("SDXL", 4, 0.13025, 0.0)


@pytest.mark.parametrize("stages", [(Strokes(),), (Action("fade"),), (Action("glow"),), (Strokes(schedules=2), Action("flip"))])
@pytest.mark.parametrize("route", [Route(), Route(depth=1.0), Route(depth=0.0, guidance=1.0), Route(depth=0.3, guidance=0.5, interpolation="slerp")])
def test_endpoints_are_exact(stages, route):
    a, b = blurry_to_sharp_plan(seed=1), blurry_to_sharp_plan(seed=2)
    painting = transition([a, b], stages, route, PaintOptions(pacing="change", frames=40))
    assert len(painting) == 40
    assert torch.equal(painting.frames[0], a.final)
    assert torch.equal(painting.frames[-1].view(torch.int32), b.final.view(torch.int32))


def test_depth_chooses_how_far_back_the_route_goes():
    a, b = blurry_to_sharp_plan(seed=1, steps=9), blurry_to_sharp_plan(seed=2, steps=9)
    shallow = route_targets(a, b, Route(depth=0.25))
    deep = route_targets(a, b, Route(depth=1.0))
    assert shallow.shape[0] == 2 + 3 and deep.shape[0] == 8 + 9
    # backward through A: the first target is A's second-to-last prediction
    assert torch.equal(deep[0], a.originals[-2])
    assert torch.equal(deep[7], a.originals[0])  # A's roughest prediction
    assert torch.equal(deep[8], b.originals[0])  # then B from its roughest
    # a deeper route passes through blurrier targets (less detail in the middle)
    detail = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    assert detail(deep[7]) < detail(shallow[2])


def test_guidance_uses_interpolated_latents():
    a, b = blurry_to_sharp_plan(seed=1), blurry_to_sharp_plan(seed=2)
    guided = route_targets(a, b, Route(depth=0.0, guidance=1.0, guidance_steps=4))
    expected = interpolate(a.final, b.final, torch.tensor([0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(guided, expected)
    assert torch.equal(guided[-1], b.final)


def test_guided_shared_background_edit_changes_only_the_edit():
    a = blurry_to_sharp_plan(seed=5)
    edited_final = a.final.clone()
    edited_final[:, 4:9, 4:9] += 2.0  # the edit: one region; the background is shared
    b = make_plan(a.originals.clone().index_put_((torch.tensor([a.steps - 1]),), edited_final[None]), edited_final)
    painting = transition([a, b], (Strokes(),), Route(depth=0.0, guidance=1.0), PaintOptions())
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[4:9, 4:9] = False
    # background pixels never leave their (shared) value
    assert (painting.frames[:, :, outside] == a.final[:, outside]).all()


def test_pingpong_returns_to_a_and_chains_visit_every_image():
    a, b, c = (blurry_to_sharp_plan(seed=s) for s in (1, 2, 3))
    options = PaintOptions(frames=20)
    loop = transition([a, b], (Action("fade"),), Route(), options, pingpong=True)
    assert len(loop) == 2 * 20 - 1
    assert torch.equal(loop.frames[0], a.final) and torch.equal(loop.frames[19], b.final)
    assert torch.equal(loop.frames[-1], a.final)
    chain = transition([a, b, c], (Strokes(),), Route(), options)
    assert len(chain) == 2 * 20 - 1
    assert torch.equal(chain.frames[19], b.final) and torch.equal(chain.frames[-1], c.final)
    assert (chain.coverage[20:] >= chain.coverage[19]).all()  # coverage keeps accumulating


def test_checkpoints_sharing_a_format_may_meet_others_are_refused_by_name():
    a = with_format(blurry_to_sharp_plan(seed=1), SD15)
    b = with_format(blurry_to_sharp_plan(seed=2), SD15)
    assert torch.equal(transition([a, b], (Action("fade"),)).frames[-1], b.final)
    xl = with_format(blurry_to_sharp_plan(seed=2), SDXL)
    with pytest.raises(PlanError, match=r"SD15 \(4 channels.*SDXL \(4 channels"):
        transition([a, xl], (Action("fade"),))
    flux = make_plan(torch.randn(3, 16, 16, 16), latent_format=LatentFormat("Flux", 16, 0.3611, 0.1159))
    with pytest.raises(PlanError, match="Flux"):
        transition([a, flux], (Action("fade"),))


def test_different_sizes_are_refused_unless_resize_is_asked_for():
    a = blurry_to_sharp_plan(seed=1, size=16)
    b = blurry_to_sharp_plan(seed=2, size=24)
    with pytest.raises(PlanError, match="16x16 latent pixels but plan B is 24x24"):
        transition([a, b], (Action("fade"),))
    painting = transition([a, b], (Action("fade"),), Route(resize=True))
    assert painting.frames.shape[-2:] == (16, 16)
    assert torch.equal(painting.frames[0], a.final)


def test_a_transition_needs_two_plans_and_sane_settings():
    with pytest.raises(PlanError, match="at least two plans"):
        transition([blurry_to_sharp_plan()], (Strokes(),))
    with pytest.raises(ValueError, match="depth"):
        Route(depth=2)
    with pytest.raises(ValueError, match="guidance"):
        Route(guidance=-0.1)
