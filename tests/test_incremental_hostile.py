"""The staged decoder (painter/render/staged.py) on hostile paintings: it never raises, every frame
meets the bound against its own full decode, and the last frame is exact.

The decoders here are TAESD-shaped (3x3 convolutions, nearest upsampling, an output clamped to
0..1, as ComfyUI clamps a VAE's image) with fixed weights, so every example is the same on every
CPU; the real taef2 takes a few of the same paintings at the end.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from latent_painter.painter.render.spans import IncrementalOptions, IncrementalStats, psnr
from latent_painter.painter.render.staged import Layer, staged_strategy
from latent_painter.painter.render.strategies import DecoderView

CHANNELS, SIDE = 4, 16


def clamped_decoder(response: float = 0.25, seed: int = 0) -> DecoderView:
    """A TAESD-shaped decoder whose image moves about ``response`` per latent unit (taef2's head
    output moves its image by 0.2-0.4 per unit) and saturates at 0 and 1: ``[1,4,h,w] -> [1,2h,2w,3]``.
    Its layers chained are its decode, bit for bit."""
    generator = torch.Generator().manual_seed(seed)
    head = nn.Conv2d(CHANNELS, 8, 3, padding=1)
    tail = nn.Conv2d(8, 3, 3, padding=1)
    with torch.no_grad():
        for conv in (head, tail):
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / math.sqrt(conv.weight[0].numel()))
            conv.bias.zero_()
    layers = (
        Layer(head, reach=1),
        Layer(nn.ReLU()),
        Layer(nn.Upsample(scale_factor=2), scale=2),
        Layer(tail, reach=1),
        Layer(lambda x: (0.5 + response * x).clamp(0.0, 1.0).movedim(1, -1)),
    )

    def decode(latent):
        with torch.no_grad():
            for layer in layers:
                latent = layer.run(latent)
        return latent

    return DecoderView(decode=decode, name="clamped toy", layers=layers, exact=True)


def decode_staged(view, latents, options):
    run = staged_strategy().start(view, options, tuple(latents.shape[1:]))
    assert not isinstance(run, str), run
    stats = IncrementalStats()
    return torch.cat(list(run(iter(latents.split(7)), stats))), stats


def assert_within_bound(view, latents, options=IncrementalOptions(check_every=8)):
    out, stats = decode_staged(view, latents, options)
    assert out.shape[0] == latents.shape[0]
    scores = [psnr(out[i], view.decode(latents[i : i + 1])[0]) for i in range(latents.shape[0])]
    worst = min(range(len(scores)), key=scores.__getitem__)
    assert scores[worst] >= options.min_psnr, f"frame {worst} of {len(scores)}: {scores[worst]:.1f} dB ({stats.summary()})"
    assert torch.equal(out[-1], view.decode(latents[-1:])[0])
    return stats


def test_a_full_decode_equal_to_the_stale_image_does_not_stop_the_decoder():
    """White paper saturates the image: change below the threshold there leaves a full decode equal
    to the stale image away from the changes, so the gain measured at the check is exactly 0 on
    every CPU. It was divided by at the next frame (ZeroDivisionError: the README's demo crashed
    after 274 s on an AMD EPYC). Then the painting leaves the saturated range."""
    view = clamped_decoder()
    paper = torch.full((1, CHANNELS, SIDE, SIDE), 40.0)
    drift = torch.zeros_like(paper)
    drift[..., 4:-4, 4:-4] = 0.002  # below the threshold, inside the paper (away from its zero-padded border)
    frames = [paper + k * drift for k in range(12)]
    photo = torch.randn((1, CHANNELS, SIDE, SIDE), generator=torch.Generator().manual_seed(1))
    frames += [torch.lerp(frames[-1], photo, k / 20) for k in range(1, 21)]
    assert_within_bound(view, torch.cat(frames), IncrementalOptions(check_every=8))


# ---------------------------------------------------------------- hostile paintings, drawn by hypothesis

STEPS = st.one_of(
    st.tuples(st.just("repeat")),
    st.tuples(st.just("pixel"), st.integers(0, SIDE - 1), st.integers(0, SIDE - 1), st.integers(0, CHANNELS - 1),
              st.sampled_from([1e-6, 1e-3, 0.05, 0.09, 0.5, 4.0])),
    st.tuples(st.just("drift"), st.integers(0, SIDE - 2), st.integers(0, SIDE - 2), st.integers(1, SIDE),
              st.sampled_from([1e-4, 0.01, 0.04, 0.099])),
    st.tuples(st.just("stroke"), st.integers(0, SIDE - 1), st.integers(0, SIDE - 1), st.integers(1, 5)),
    st.tuples(st.just("earlier"), st.integers(0, 1000)),
    st.tuples(st.just("flat"), st.sampled_from([-3.0, 0.0, 0.7, 40.0])),
)


def hostile_painting(start: str, seed: int, steps) -> torch.Tensor:
    """Frames ``[1 + len(steps), 4, 16, 16]``: a start (random, all-equal, or saturated paper) and
    steps that repeat a frame, move one latent pixel, drift a box below the threshold, paint a
    stroke of a random photo latent, return to an earlier frame or make every value equal."""
    generator = torch.Generator().manual_seed(seed)
    photo = torch.randn((CHANNELS, SIDE, SIDE), generator=generator)
    first = {"random": torch.randn((CHANNELS, SIDE, SIDE), generator=generator),
             "flat": torch.full((CHANNELS, SIDE, SIDE), 0.3), "paper": torch.full((CHANNELS, SIDE, SIDE), 40.0)}[start]
    ys, xs = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    frames = [first]
    for step in steps:
        frame = frames[-1].clone()
        kind = step[0]
        if kind == "pixel":
            _, y, x, c, delta = step
            frame[c, y, x] += delta
        elif kind == "drift":
            _, y, x, size, delta = step
            frame[:, y : y + size, x : x + size] += delta
        elif kind == "stroke":
            _, y, x, radius = step
            disk = ((ys - y) ** 2 + (xs - x) ** 2 <= radius**2).float()
            frame = frame + disk * (photo - frame)
        elif kind == "earlier":
            frame = frames[step[1] % len(frames)].clone()
        elif kind == "flat":
            frame = torch.full_like(frame, step[1])
        frames.append(frame)
    return torch.stack(frames)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(["random", "flat", "paper"]), seed=st.integers(0, 2**16),
       steps=st.lists(STEPS, min_size=8, max_size=60), check_every=st.sampled_from([2, 5, 8, 32]),
       response=st.sampled_from([0.25, 0.5, 1.0]))
@example(start="random", seed=0, steps=[("repeat",)] * 11 + [("flat", 0.0), ("drift", 0, 0, 7, 0.01), ("earlier", 110)],
         check_every=5, response=1.0)  # every check saw nothing pending: the prior gain judged a corner drift
# Found by new draws; the gain a full decode measured read 2-3x low for the pattern of change that
# followed, and the frames between checks measured 44.86, 42.26 and 42.75 dB before the stale
# budget was halved and the frame that left the most was measured (painter/render/spans.py).
@example(start="random", seed=0, steps=[("repeat",)] * 5 + [("flat", 0.0), ("drift", 0, 0, 10, 0.01),
         ("drift", 0, 10, 3, 0.04), ("flat", 0.0)], check_every=2, response=1.0)
@example(start="paper", seed=59347, steps=[
    ("pixel", 2, 13, 3, 1e-06), ("flat", -3.0), ("stroke", 3, 14, 4), ("drift", 9, 8, 13, 0.099), ("flat", 40.0),
    ("stroke", 2, 9, 5), ("earlier", 244), ("repeat",), ("earlier", 979), ("drift", 11, 8, 4, 0.099),
    ("drift", 0, 12, 3, 0.01), ("pixel", 7, 8, 3, 0.5), ("flat", 0.7), ("drift", 3, 6, 7, 0.04),
    ("drift", 7, 9, 4, 0.04), ("flat", 0.7)], check_every=2, response=1.0)
@example(start="random", seed=36386, steps=[
    ("repeat",), ("repeat",), ("stroke", 9, 10, 5), ("drift", 11, 6, 4, 0.01), ("repeat",), ("pixel", 4, 6, 0, 4.0),
    ("pixel", 6, 2, 3, 0.05), ("repeat",), ("earlier", 393), ("flat", 0.0), ("drift", 13, 10, 8, 0.04),
    ("pixel", 0, 15, 2, 0.09), ("flat", 0.0), ("earlier", 348), ("pixel", 4, 11, 1, 0.09)], check_every=5, response=1.0)
def test_hostile_paintings_meet_the_bound_on_every_frame(start, seed, steps, check_every, response):
    """Responses 0.25-1.0 give gains of 0.016-0.37 image MSE per unit of squared change, around
    taef2's measured 0.04-0.15 and up to 2.5x its highest: the envelope the bound is promised in.
    The frames inside a passed span are judged by the gain full decodes measured, an estimate that
    reads 2-3x low on another pattern of change; the stale budget (a quarter of the error the bound
    allows) and the measured frame nearest the bound cover that. 16,000 new draws of these
    paintings found no frame under the bound, worst 46.3 dB (33 paintings had a frame under it
    before, down to 41.4 dB), for 2% more full decodes. At response 2.0 (7x taef2's sensitivity,
    clamping much of the image, outside the envelope) 7 in 1000 still measured under it, down to
    39.8 dB."""
    view = clamped_decoder(response)
    assert_within_bound(view, hostile_painting(start, seed, steps), IncrementalOptions(check_every=check_every))


@pytest.mark.parametrize("start", ["random", "paper"])
def test_a_region_unchanged_for_hundreds_of_frames(start):
    """300 frames: one quadrant never changes, the rest takes strokes and drift below the threshold."""
    generator = torch.Generator().manual_seed(7)
    steps = []
    for k in range(299):
        if k % 3 == 0:
            steps.append(("stroke", int(torch.randint(SIDE // 2, SIDE, (1,), generator=generator)),
                          int(torch.randint(0, SIDE, (1,), generator=generator)), 1))
        else:
            steps.append(("drift", SIDE // 2 + 1, 0, SIDE // 2, 0.03))
    latents = hostile_painting(start, 3, steps)
    assert torch.equal(latents[0, :, :4, :4], latents[-1, :, :4, :4])
    assert_within_bound(clamped_decoder(), latents, IncrementalOptions(check_every=32))


def test_the_real_taef2_on_white_paper(taesd_folder):
    """The demo's case with the real decoder: white paper (the image clamps to 1), change below the
    threshold on it, then strokes of a photo and a return to an earlier frame."""
    from latent_painter.painter.tools.demo import load_photos
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    vae = TinyAutoencoder.from_folder(taesd_folder, "taef2")
    paper = vae.encode(torch.ones(1, 256, 256, 3))
    photo = vae.encode(load_photos(["astronaut"], 256))
    side = paper.shape[-1]
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    frames = [paper + 0.002 * k for k in range(10)]
    for k in range(20):
        disk = (((ys - (5 * k) % side) ** 2 + (xs - (7 * k) % side) ** 2) <= 4).to(photo.dtype)
        frames.append(frames[-1] + disk * (photo - frames[-1]))
    frames += [frames[12], frames[12], frames[-1]]
    stats = assert_within_bound(vae.decoder_view(), torch.cat(frames), IncrementalOptions(check_every=8))
    # White paper hides stale change from every full decode here (gain readings 0.000-0.028, under
    # GAIN_FLOOR), so the gain stands in at GAIN_PRIOR and most frames are decoded in full (with a
    # floored reading, 0.04, 5+ frames were cropped: too little for a toy decoder that then left the
    # paper, see the hypothesis test); crops still run where strokes land.
    assert stats.crop_decodes >= 1, stats.summary()


def test_a_reading_on_white_paper_does_not_set_the_gain():
    """A full decode on white paper reads the stale change as hidden (a gain under GAIN_FLOOR): the
    gain stands in at the prior, and the first reading that shows the change replaces it, lower or
    not; from then on readings only raise it."""
    from latent_painter.painter.render.staged import GAIN_FLOOR, GAIN_PRIOR, StagedCanvas, StagedSettings, split

    view = clamped_decoder()
    head, stages = split(view.layers)
    canvas = StagedCanvas(view.decode, head, stages, IncrementalOptions(), StagedSettings(), exact=True)
    paper = torch.full((1, CHANNELS, SIDE, SIDE), 40.0)
    with torch.no_grad():
        canvas.start(paper)
        canvas.restart(paper + 0.002)  # saturated: the full decode equals the stale image
    assert (canvas.gain, canvas.gain_prior, canvas.gain_hidden) == (GAIN_PRIOR, False, True)
    canvas._raise_gain(0.5 * GAIN_FLOOR)
    assert canvas.gain == GAIN_PRIOR and canvas.gain_hidden
    canvas._raise_gain(0.06)  # a reading that shows the change replaces the stand-in
    assert (canvas.gain, canvas.gain_hidden) == (0.06, False)
    canvas._raise_gain(0.01)  # hidden again: a measured gain stays
    canvas._raise_gain(0.05)  # lower: a measured gain only rises
    assert canvas.gain == 0.06
