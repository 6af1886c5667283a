"""Transitions between real photos against the lerp/slerp baselines (ARCHITECTURE.md "Targets", crispness).

Run:  .venv/bin/python benchmarks/bench_transition.py [--taesd FOLDER] [--quick]

Setup, all in one process on this machine: scikit-image's bundled photos at --size px (256)
are encoded with the real taef2 TAESD encoder; each plan is the stand-in sampler run
(``standin.photo_plan``) on one photo latent, with the latent format fitted on the photos and
their decodes (``latent_format_from(latents, decoded)``), so the painter's estimate of visible
change is the least-squares latent->RGB projection. The painter paces frames by change,
calibrated with real decodes (``decode=decoder.decode``). Every figure is measured on frames
decoded by the real taef2 decoder, over the active frames (``metrics.active_range``):

- pacing: the largest gap between the cumulative share of frame-to-frame change and the share
  of frames elapsed (0 = even; target <= 0.10);
- crispness: per in-between frame, sharpness (mean |Laplacian|) over the sharpness linearly
  interpolated between the two endpoints; the minimum over the in-between frames.

Prints:
(a) the depth curve of a backward/forward transition between two different photos
    (astronaut -> chelsea): route schedules, frames (the length grows with depth at a fixed
    number of frames per schedule), pacing and crispness min, with crispness and pacing as
    ratios against lerp and slerp of the two final latents decoded at one frame count (the
    default depth 0.5's) in the same run. No crispness target: the route passes through blur
    by design (the author's min is 0.12); the curve is the time vs crispness trade-off.
    "route crisp" is the crispness min of the route's own targets decoded one per schedule (no
    painter): how blurry the plan gets at that depth. At depth 0 (no guidance) the route is B's
    final latent repeated (Route.guidance_steps schedules), so it is longer than depth 0.25's.
(b) guided transitions, Route(depth=0, guidance=1.0), stroke24, 40 frames, A = astronaut (a
    stand-in trajectory), each with guidance ``over`` (B painted over A, the default) against the
    paper's ``lerp`` guidance in the same run:
    - quadrant: B = A's final latent with its upper right quadrant replaced by chelsea's latent,
      given as one latent (no trajectory, Plan From Latents' case) and as a trajectory;
    - the photo edited in pixel space before encoding, one latent (--edit paste: a square of
      chelsea's face pasted in; recolour: a hue rotation of a disk; object: coffee's cup
      pasted as a disk in the middle);
    - chelsea: a pair that shares nothing (B a trajectory).
    ghost max = the largest ``metrics.ghosting`` over the frames (0 = every changed 8x8 block of
    every frame is A's or B's, 0.5 = a half-and-half cross-fade).
    Targets: crispness min >= 0.95 for the edits (author 0.76, slerp anchor 0.58), pacing <= 0.10,
    no cross-fade.
(c) the baselines: lerp and slerp of the two final latents, same frame count, decoded.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from latent_painter.painter.tools.demo import load_photos
from latent_painter.painter.render.decoding import decode_frames
from latent_painter.painter.tools.metrics import active_range, crispness, ghosting, lerp_latents, pacing, slerp_latents
from latent_painter.painter.engine.plan import make_plan
from latent_painter.painter.engine.paint import PaintOptions
from latent_painter.painter.tools.standin import latent_format_from, photo_plan
from latent_painter.painter.engine.strokes import Strokes
from latent_painter.painter.tools.taesd import TinyAutoencoder
from latent_painter.painter.engine.pacing import calibration_probes
from latent_painter.painter.tools.weights import find_or_exit
from latent_painter.painter.engine.transition import Route, route_targets, transition

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # prior of the stand-in: all four
PACING_TARGET = 0.10
CRISP_TARGET = 0.95
AUTHOR_DEEP_CRISP = 0.12
AUTHOR_GUIDED_CRISP = 0.76
SLERP_ANCHOR_CRISP = 0.58


def edited_photo(photo: torch.Tensor, donor: torch.Tensor, how: str) -> torch.Tensor:
    """``photo`` [H,W,3] with one region edited in pixel space; the rest is left bit for bit."""
    size = photo.shape[0]
    out = photo.clone()
    if how == "paste":
        # chelsea's face (centre-left of the square crop) over the upper right of the astronaut
        side = size * 3 // 8
        top, left = size // 8, size - side - size // 16
        src_top, src_left = size // 6, size // 4
        out[top : top + side, left : left + side] = donor[src_top : src_top + side, src_left : src_left + side]
        return out
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    if how == "object":
        # the donor's middle (coffee's cup) as a disk over the middle of the photo
        disk = ((yy - size * 0.5) ** 2 + (xx - size * 0.5) ** 2) <= (size * 0.2) ** 2
        out[disk] = donor[disk]
        return out
    # recolour: rotate the hue of a disk (the astronaut's suit, lower left) by 120 degrees
    cy, cx, radius = size * 0.7, size * 0.3, size * 0.22
    disk = ((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2
    rotated = out[..., [2, 0, 1]]  # RGB -> BRG: a 120 degree hue rotation
    out[disk] = rotated[disk]
    return out


def measure(images: torch.Tensor) -> tuple[int, float, float, float]:
    """(active frames, pacing, crispness min over the in-between active frames, ghost max)."""
    start, stop = active_range(images)
    active = images[start:stop]
    return active.shape[0], pacing(active), crispness(active)[1], float(ghosting(images).max())


def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", help="folder with taef2_encoder.pth and taef2_decoder.pth (default: the lookup of painter/tools/weights.py)")
    parser.add_argument("--quick", action="store_true", help="smaller photos, fewer steps/frames/depths (a smoke run)")
    parser.add_argument("--size", type=int, default=None, help="photo side in px (default 256, --quick 128)")
    parser.add_argument("--steps", type=int, default=None, help="stand-in sampler steps per plan (default 16, --quick 10)")
    parser.add_argument("--frames-per-schedule", type=float, default=1.5,
                        help="frames per route schedule in (a) (default 1.5; at least 16 frames)")
    parser.add_argument("--edit-frames", type=int, default=None, help="frames of the guided edit (b) (default 40, --quick 32)")
    parser.add_argument("--edit", choices=("paste", "recolour", "object"), default="object",
                        help="the pixel-space edit of (b)")
    parser.add_argument("--depths", default=None, help="comma-separated depths for (a) (default 0,0.25,0.5,0.75,1)")
    args = parser.parse_args(argv)
    size = args.size or (128 if args.quick else 256)
    steps = args.steps or (10 if args.quick else 16)
    per_schedule = args.frames_per_schedule
    edit_frames = args.edit_frames or (32 if args.quick else 40)
    depths = [float(d) for d in (args.depths or ("0,0.5,1" if args.quick else "0,0.25,0.5,0.75,1")).split(",")]

    torch.set_grad_enabled(False)
    started = time.perf_counter()
    decoder = find_or_exit(args.taesd, families=("taef2",), program="bench_transition").load()
    decoded_count = [0]

    def decode(latents: torch.Tensor) -> torch.Tensor:
        decoded_count[0] += latents.shape[0]
        return decoder.decode(latents)

    def decode_all(frames: torch.Tensor) -> torch.Tensor:
        return decode_frames(decode, frames, chunk_size=16)

    photos = load_photos(PHOTOS, size)
    edited = edited_photo(photos[0], photos[2 if args.edit == "object" else 1], args.edit)
    latents = decoder.encode(torch.cat([photos, edited[None]]))
    prior = latents[: len(PHOTOS)]
    fmt = latent_format_from(prior, decoder.decode(prior), name=decoder.name)
    plan = {name: photo_plan(latents[i], prior, steps=steps, latent_format=fmt) for i, name in enumerate(PHOTOS)}
    # (b)'s B plans: an edited latent alone (a plan of one schedule, as Plan From Latents makes it) or a trajectory
    half = latents.shape[-1] // 2
    quadrant = plan["astronaut"].final.clone()
    quadrant[:, :half, half:] = latents[1][:, :half, half:]
    plan["quadrant"] = make_plan(quadrant[None], latent_format=fmt)
    plan["quadrant, trajectory"] = photo_plan(quadrant, prior, steps=steps, latent_format=fmt)
    plan["edited"] = make_plan(latents[-1][None], latent_format=fmt)
    stages = (Strokes(),)  # stroke24
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, decoder {decoder.name}, "
          f"photos {size}x{size} px (latents {tuple(latents.shape[1:])}), {steps}-step stand-in plans, "
          f"painter stroke24, pacing by change calibrated with the decoder")

    # ---- (a) depth curve, astronaut -> chelsea
    a, b = plan["astronaut"], plan["chelsea"]
    print(f"\n== (a) backward/forward transition astronaut -> chelsea: depth curve "
          f"({per_schedule:g} frames per route schedule) ==")
    rows = []
    for depth in depths:
        route = Route(depth=depth)
        schedules = route_targets(a, b, route).shape[0]
        frames = max(16, round(per_schedule * schedules) + 1)
        t0 = time.perf_counter()
        painting = transition([a, b], stages, route, PaintOptions(frames=frames, pacing="change"), decode=decode)
        paint_seconds = time.perf_counter() - t0
        exact = torch.equal(painting.frames[-1].view(torch.int32), b.final.view(torch.int32))
        active, pace, crisp, _ = measure(decode_all(painting.frames))
        # the route itself (A's final, then one frame per schedule target), decoded: how blurry the plan gets
        # (none at depth 0 without guidance: the route is then B's final alone, a cut)
        cut = round(depth * (a.targets.shape[0] - 1)) == 0 and round(depth * (b.targets.shape[0] - 1)) == 0
        route_crisp = None if cut else crispness(decode_all(torch.cat([a.final[None], route_targets(a, b, route)])))[1]
        rows.append((depth, schedules, len(painting), active, pace, crisp, route_crisp, exact, paint_seconds))
    base_frames = rows[min(range(len(rows)), key=lambda i: abs(rows[i][0] - 0.5))][2]
    base_a = {name: measure(decode_all(fn(a.final, b.final, base_frames)))
              for name, fn in (("lerp", lerp_latents), ("slerp", slerp_latents))}
    print(f"{'depth':>5} {'sched':>5} {'frames':>6} {'s@24fps':>7} {'active':>6} {'pacing':>7} {'<=0.10':>6} "
          f"{'vs lerp':>7} {'vs slerp':>8} {'crisp min':>9} {'vs lerp':>7} {'vs slerp':>8} {'route crisp':>11} {'exact':>5} "
          f"{'paint s':>7}")
    for depth, schedules, frames, active, pace, crisp, route_crisp, exact, seconds in rows:
        print(f"{depth:>5.2f} {schedules:>5} {frames:>6} {frames / 24:>7.1f} {active:>6} {pace:>7.3f} "
              f"{mark(pace <= PACING_TARGET):>6} {pace / base_a['lerp'][1]:>6.2f}x {pace / base_a['slerp'][1]:>7.2f}x "
              f"{crisp:>9.3f} {crisp / base_a['lerp'][2]:>6.2f}x {crisp / base_a['slerp'][2]:>7.2f}x {'cut' if route_crisp is None else f'{route_crisp:.3f}':>11} "
              f"{'yes' if exact else 'NO':>5} {seconds:>7.1f}")
    print(f"(pacing ratio: lower is better; crispness ratio: higher is better; baselines at {base_frames} frames, "
          f"the depth-0.5 row's count; route crisp = crispness min of the route's targets decoded one per schedule, "
          f"no painter; paint s includes the calibration decodes; author's backward/forward crispness min "
          f"{AUTHOR_DEEP_CRISP})")

    # ---- (b) guided transitions: B painted over A (over) against the paper's interpolated guidance (lerp)
    a = plan["astronaut"]
    pairs = (("quadrant, B one latent", "quadrant"), ("quadrant, B trajectory", "quadrant, trajectory"),
             (f"{args.edit} (pixels), B one latent", "edited"), ("chelsea (shares nothing)", "chelsea"))
    print(f"\n== (b) guided transitions astronaut -> B, Route(depth=0, guidance=1.0), stroke24, {edit_frames} frames; "
          f"guidance over (ours) against lerp (the paper's) ==")
    edited_px = (photos[0] != edited).any(-1).float().mean().item()
    print(f"(the pixel edit covers {edited_px:.0%} of the pixels; taef2's encoder, whose group norms see the whole "
          f"image, spreads it over the whole latent; the quadrant edit replaces exactly a quarter of the latent)")
    print(f"{'B':<30} {'guidance':<8} {'active':>6} {'pacing':>7} {'<=0.10':>6} {'crisp min':>9} {'>=0.95':>6} "
          f"{'ghost max':>9} {'exact':>5} {'paint s':>7}")
    guided = {}
    for label, key in pairs:
        b = plan[key]
        for how in ("over", "lerp"):
            t0 = time.perf_counter()
            painting = transition([a, b], stages, Route(depth=0.0, guidance=1.0, interpolation=how),
                                  PaintOptions(frames=edit_frames, pacing="change"), decode=decode)
            seconds = time.perf_counter() - t0
            exact = torch.equal(painting.frames[-1].view(torch.int32), b.final.view(torch.int32))
            guided[label, how] = active, pace, crisp, ghost = measure(decode_all(painting.frames))
            target = mark(crisp >= CRISP_TARGET) if key != "chelsea" else "-"
            print(f"{label:<30} {how:<8} {active:>6} {pace:>7.3f} {mark(pace <= PACING_TARGET):>6} {crisp:>9.3f} "
                  f"{target:>6} {ghost:>9.3f} {'yes' if exact else 'NO':>5} {seconds:>7.1f}")
    print("(crispness target for the edits only; chelsea shares nothing, so guided over paints a collage of B over A)")

    # ---- (c) baselines
    print("\n== (c) baselines: lerp / slerp of the two final latents, decoded; ours as ratios ==")
    print(f"{'pair':<34} {'baseline':<8} {'frames':>6} {'pacing':>7} {'ours/base':>9} {'crisp min':>9} {'ours/base':>9} "
          f"{'ghost max':>9}")
    depth_half = rows[min(range(len(rows)), key=lambda i: abs(rows[i][0] - 0.5))]
    cases = [(f"astronaut->chelsea (d={depth_half[0]:g})", plan["chelsea"], (depth_half[3], depth_half[4], depth_half[5]),
              base_frames)]
    cases += [(f"{label} (over)", plan[key], guided[label, "over"], edit_frames) for label, key in pairs[:3]]
    for pair, b, ours, frames in cases:
        for name, fn in (("lerp", lerp_latents), ("slerp", slerp_latents)):
            _, pace, crisp, ghost = measure(decode_all(fn(a.final, b.final, frames)))
            print(f"{pair:<34} {name:<8} {frames:>6} {pace:>7.3f} {ours[1] / pace:>8.2f}x {crisp:>9.3f} "
                  f"{ours[2] / crisp:>8.2f}x {ghost:>9.3f}")
    print(f"(anchors: author's guided crispness min {AUTHOR_GUIDED_CRISP}, slerp {SLERP_ANCHOR_CRISP}; "
          f"targets: guided crispness >= {CRISP_TARGET}, pacing <= {PACING_TARGET}; latent lerp/slerp decoded by TAESD "
          f"stay sharp while they ghost: ghost max shows it)")
    print(f"\n{decoded_count[0]} frames decoded in all (calibration probes included: about "
          f"{calibration_probes(100)} per 100 frames), {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
