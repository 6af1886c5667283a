"""Transitions: exact endpoints, depth, guidance, ping-pong, chains, refused pairs."""

import pytest
import torch
from plans import blurry_to_sharp_plan

from latent_painter.painter.engine.actions import Action
from latent_painter.painter.engine.paint import PaintOptions
from latent_painter.painter.engine.plan import LatentFormat, PlanError, make_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.engine.transition import Route, interpolate, painted_over, route_targets, transition


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


def test_guidance_lerp_uses_interpolated_latents():
    a, b = blurry_to_sharp_plan(seed=1), blurry_to_sharp_plan(seed=2)
    guided = route_targets(a, b, Route(depth=0.0, guidance=1.0, guidance_steps=4, interpolation="lerp"))
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


def whole_pixels(latents, a, b):
    """Bool [N,H,W]: where each latent is ``a``'s or ``b``'s in every channel (bit for bit)."""
    return (latents == a).all(-3) | (latents == b).all(-3)


@pytest.mark.parametrize("depth", [0.0, 0.5])
def test_guidance_over_targets_paint_whole_pixels_of_b_over_a_and_never_take_them_back(depth):
    a, b = blurry_to_sharp_plan(seed=1, channels=8), blurry_to_sharp_plan(seed=2, channels=8)
    targets = route_targets(a, b, Route(depth=depth, guidance=1.0, guidance_steps=6))
    assert Route().interpolation == "over"  # the default: saved lerp/slerp workflows keep theirs
    assert whole_pixels(targets, a.final, b.final).all()
    turned = (targets == b.final).all(-3) & (a.final != b.final).any(0)
    assert (turned[1:] >= turned[:-1]).all()  # a place painted with B stays B
    assert 0 < turned[0].sum() < turned[-2].sum() < turned[-1].sum() == 16 * 16
    assert torch.equal(targets[-1], b.final)
    lerped = route_targets(a, b, Route(depth=depth, guidance=1.0, guidance_steps=6, interpolation="lerp"))
    assert not whole_pixels(lerped[:-1], a.final, b.final).any()  # the old guidance: every place a blend


def test_lower_guidance_at_depth_zero_paints_sooner_but_never_blends():
    a, b = blurry_to_sharp_plan(seed=1), blurry_to_sharp_plan(seed=2)
    full, half = (route_targets(a, b, Route(depth=0.0, guidance=g, guidance_steps=5)) for g in (1.0, 0.5))
    assert whole_pixels(half, a.final, b.final).all()
    painted = lambda targets: (targets == b.final).all(1).sum((1, 2))
    assert (painted(half) >= painted(full)).all() and (painted(half) > painted(full))[:-1].any()


def test_painted_over_takes_first_the_places_where_b_brings_detail():
    # A: detail on the left, flat on the right; B: flat on the left, detail on the right. Painting the
    # right first keeps an in-between from losing A's detail before B's arrives (no blurry middle).
    generator = torch.Generator().manual_seed(3)
    a, b = torch.zeros(4, 16, 16), torch.zeros(4, 16, 16)
    a[:, :, :8] = torch.randn(4, 16, 8, generator=generator)
    b[:, :, 8:] = torch.randn(4, 16, 8, generator=generator)
    halfway = painted_over(a, b, torch.tensor([0.0, 0.4, 1.0]))
    assert torch.equal(halfway[0], a) and torch.equal(halfway[-1], b)
    middle = (halfway[1] == b).all(0) & (a != b).any(0)
    assert middle[:, 10:].float().mean() > 0.6 and middle[:, :6].float().mean() < 0.1


@pytest.mark.parametrize("channels_per_stroke", [0, 1])
def test_guided_over_frames_are_never_a_blend_of_a_and_b_mid_stroke_either(channels_per_stroke):
    # Change pacing puts frames inside strokes; an over route draws them in from the centre, so a
    # part-done stroke never fades B in over A: every place of every frame is A's or B's.
    a = blurry_to_sharp_plan(seed=5, channels=8)
    edited = a.final.clone()
    edited[:, 2:10, 3:12] = blurry_to_sharp_plan(seed=6, channels=8).final[:, 2:10, 3:12]
    b = make_plan(edited[None])  # one edited latent, no trajectory
    stages = (Strokes(channels_per_stroke=channels_per_stroke),)
    painting = transition([a, b], stages, Route(depth=0.0, guidance=1.0), PaintOptions(frames=60, pacing="change"))
    assert torch.equal(painting.frames[-1].view(torch.int32), b.final.view(torch.int32))
    # whole pixels even with a painter of one channel per stroke: a partial group would leave a place
    # part A and part B, a blend of its own
    assert whole_pixels(painting.frames, a.final, b.final).all()
    painted = (painting.frames[:, :, 2:10, 3:12] == b.final[:, 2:10, 3:12]).sum((1, 2, 3))
    assert len(set(painted.tolist())) > 20  # painted gradually, not cut
    lerped = transition([a, b], stages, Route(depth=0.0, guidance=1.0, interpolation="lerp"),
                        PaintOptions(frames=60, pacing="change"))
    assert not ((lerped.frames == a.final) | (lerped.frames == b.final)).all()  # the old guidance blends


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


def test_guided_quadrant_edit_of_a_real_photo_is_painted_over_crisp_and_never_ghosts(taesd_folder):
    # The case at 128 px with the real taef2 pair: A a stand-in trajectory of the astronaut, B its
    # final latent with the upper right quadrant replaced by chelsea's, one latent (no trajectory).
    from latent_painter.painter.render.decoding import decode_frames
    from latent_painter.painter.tools.demo import load_photos
    from latent_painter.painter.tools.metrics import crispness, ghosting, pacing
    from latent_painter.painter.tools.standin import latent_format_from, photo_plan
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    torch.set_grad_enabled(False)
    vae = TinyAutoencoder.from_folder(taesd_folder)
    latents = vae.encode(load_photos(("astronaut", "chelsea", "coffee", "rocket"), 128))
    fmt = latent_format_from(latents, vae.decode(latents), name=vae.name)
    a = photo_plan(latents[0], latents, steps=8, latent_format=fmt)
    quadrant = a.final.clone()
    quadrant[:, :8, 8:] = latents[1][:, :8, 8:]
    b = make_plan(quadrant[None], latent_format=fmt)

    def painted(how):
        painting = transition([a, b], (Strokes(),), Route(depth=0.0, guidance=1.0, interpolation=how),
                              PaintOptions(frames=24, pacing="change"), decode=vae.decode)
        assert torch.equal(painting.frames[-1].view(torch.int32), b.final.view(torch.int32))
        return painting, decode_frames(vae.decode, painting.frames)

    painting, images = painted("over")
    assert whole_pixels(painting.frames, a.final, b.final).all()
    measured = crispness(images)[1], pacing(images), float(ghosting(images).max())
    print("over: crispness min %.3f, pacing %.3f, ghost max %.3f" % measured)
    assert measured[0] >= 0.95 and measured[1] <= 0.10 and measured[2] < 0.15  # lerp: 0.45
    _, lerped = painted("lerp")
    print("lerp: crispness min %.3f, ghost max %.3f" % (crispness(lerped)[1], float(ghosting(lerped).max())))
    assert ghosting(lerped).max() > 0.3  # the paper's guidance: the quadrant cross-fades
