"""Incremental decoding (painter/render/incremental.py) against full decodes with the real taef2 decoder."""

from __future__ import annotations

import math

import pytest
import torch
from nodes_support import run
from test_nodes_run import folders  # noqa: F401 - a fixture

from latent_painter.nodes import host
from latent_painter.painter.render import output, video
from latent_painter.painter.render.incremental import (
    IncrementalError,
    IncrementalOptions,
    IncrementalStats,
    Stage,
    StagedDecoder,
    changed_boxes,
    decode_all,
    decode_incremental,
    psnr,
)


@pytest.fixture(scope="module")
def vae(taesd_folder):
    """The real taef2 (skips with where it looked when the weights are absent)."""
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(taesd_folder, "taef2")


def stroke_painting(vae, size: int, strokes: int, fade: int) -> torch.Tensor:
    """Round strokes (radius 2-3 latent px) putting a photo's latent into a flat canvas, then a
    fade of the rest toward the photo: ``[1 + strokes + fade, C, size/8, size/8]``."""
    from latent_painter.painter.tools.demo import load_photos

    final = vae.encode(load_photos(["astronaut"], size))[0]
    side = size // 8
    generator = torch.Generator().manual_seed(3)
    canvas = 0.3 * final.mean(dim=(1, 2), keepdim=True).expand_as(final).clone()
    ys, xs = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    frames = [canvas.clone()]
    for _ in range(strokes):
        cy, cx = (torch.rand(2, generator=generator) * side).tolist()
        radius = 2.0 + float(torch.rand(1, generator=generator))
        disk = ((ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2).to(final.dtype)
        canvas = canvas + disk * (final - canvas)
        frames.append(canvas.clone())
    for k in range(1, fade + 1):
        frames.append(torch.lerp(canvas, final, k / fade))
    return torch.stack(frames).contiguous()


@pytest.fixture(scope="module")
def painting(vae):
    """A stroke painting of a photo's latent at 24x24 latent px (192 px), 40 frames: 29 small
    round strokes (a global group norm sees every one), then a 10-frame fade of the rest toward
    the photo (small change everywhere, as the painter's cleanup makes)."""
    return stroke_painting(vae, 192, 29, 10)


def full_decodes(vae, latents):
    """The reference: every frame decoded alone (what VAE Decode of that latent gives)."""
    return torch.cat([vae.decode(latents[i : i + 1]) for i in range(latents.shape[0])])


@pytest.fixture(scope="module")
def reference(vae, painting):
    return full_decodes(vae, painting)


def test_every_frame_within_the_bound_and_the_last_frame_identical(vae, painting, reference):
    options = IncrementalOptions(check_every=12)
    stats = IncrementalStats()
    chunks = list(decode_incremental(StagedDecoder.of_taesd(vae), painting, options, stats=stats))
    out = torch.cat(chunks)
    scores = [psnr(out[i], reference[i]) for i in range(len(out))]
    assert out.shape == reference.shape
    assert min(scores) >= options.min_psnr, scores
    assert torch.equal(out[-1], reference[-1])
    assert torch.equal(out[0], reference[0])
    # Spans of check_every frames, each ending on a full decode.
    assert [len(chunk) for chunk in chunks] == [12, 12, 12, 4]
    for end in (11, 23, 35):
        assert torch.equal(out[end], reference[end])
    # Crops did much of the strokes' work (the test would pass vacuously on full decodes alone);
    # at 24 latent px a stroke's crop with its context often covers most of the frame, and then
    # a full decode is cheaper.
    # (a missed check is allowed: the span was decoded again in full, which the bound above saw)
    assert stats.crop_decodes >= 10 and stats.checks >= 1
    assert sum(1 for s in scores[1:29] if not math.isinf(s)) >= 10
    assert stats.frames == len(out) and "40 frames" in stats.summary()


def test_chunks_in_give_the_same_frames_as_one_tensor(vae, painting):
    decoder = StagedDecoder.of_taesd(vae)
    options = IncrementalOptions(check_every=16)
    whole = decode_all(decoder, painting, options)
    chunked = decode_all(decoder, iter(painting.split(7)), options)
    assert torch.equal(whole, chunked)


def test_missed_checks_redecode_the_span_then_fall_back(vae, painting, reference):
    # A staged decoder whose tail is slightly off on crops only (an adapter that gets the borders
    # wrong): only the checks against full decodes can tell, and they must.
    def tail(features):
        return vae.decode_rest(features) * (0.97 if features.shape[-2:] != painting.shape[-2:] else 1.0)

    off = StagedDecoder(decode=vae.decode, head=vae.decode_latent_stage, tail=tail, scale=8, name="miscalibrated")
    options = IncrementalOptions(check_every=8)
    stats = IncrementalStats()
    out = decode_all(off, painting, options, stats=stats)
    assert stats.failed_checks >= 1
    # The missed span's frames were below the bound (its check frame measured ~44 dB), so this
    # holds only because that span was decoded again in full; a small crop may pass its check
    # (1.5% of the frame at 48 dB) and stay.
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= options.min_psnr
    # Each miss tightens the settings; three misses mean full decodes from then on, said in the stats.
    assert stats.options.threshold < options.threshold and stats.options.context > options.context
    assert (stats.failed_checks >= 3) == bool(stats.fallback and "missed" in stats.fallback)
    assert torch.equal(out[-1], reference[-1])


def test_stages_that_are_not_the_decode_mean_full_decodes(vae, painting, reference):
    # Off everywhere (an adapter that gets a scale wrong): the first frame, decoded both ways, tells.
    off = StagedDecoder(decode=vae.decode, head=vae.decode_latent_stage, tail=lambda f: vae.decode_rest(f) * 0.97,
                        scale=8, name="miscalibrated")
    stats = IncrementalStats()
    out = decode_all(off, painting[:6], stats=stats)
    assert torch.equal(out, reference[:6])
    assert stats.crop_decodes == 0 and "stages run in full" in stats.fallback


def test_stages_decode_a_region_exactly_from_their_kept_inputs(vae, painting, reference):
    """Each stage reads exactly its reach around a region, so a region decoded stage by stage
    from up-to-date kept inputs is the full decode there (to float rounding), borders included."""
    from latent_painter.painter.render.incremental import _Canvas

    decoder = StagedDecoder.of_taesd(vae)
    canvas = _Canvas(decoder, "test")
    canvas.scale, canvas.stages = 8, decoder.stages(8)
    features = vae.decode_latent_stage(painting[25:26])
    canvas.full(features)
    assert torch.equal(canvas.image, reference[25])
    for paste in ((5, 11, 7, 15), (0, 4, 18, 24), (0, 24, 0, 3)):
        canvas.image = torch.zeros_like(canvas.image)
        with torch.inference_mode():  # as decode_incremental runs it
            canvas._decode_region(features, paste, context=0)
        y0, y1, x0, x1 = (8 * v for v in paste)
        torch.testing.assert_close(canvas.image[y0:y1, x0:x1], reference[25, y0:y1, x0:x1], rtol=0, atol=1e-5)
        outside = canvas.image.clone()
        outside[y0:y1, x0:x1] = 0
        assert not outside.any()  # nothing written outside


def split_toy_decoder():
    """A TAESD-style nn.Sequential split by hand at its upsamples (head, then stages whose reach is
    their 3x3 convolutions counted at their input resolution), 4 latent channels, 4x upscale:
    ``(staged, decode, stages)``; ``exact_stages`` is off, so the first frame is compared both ways."""
    from torch import nn

    torch.manual_seed(0)

    def block():
        return nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())

    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), block(),
        nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, padding=1), block(),
        nn.Upsample(scale_factor=2), nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid(),
    ).eval()  # fmt: skip
    head = model[:3]
    stages = (Stage(model[3:6], 2, 2), Stage(model[6:], 2, 1))  # 3 convs at 2x -> ceil(3/2); 1 -> 1

    def decode(x):
        return model(x).movedim(1, -1)

    last = stages[-1]
    tail = stages[:-1] + (Stage(lambda f: last.run(f).movedim(1, -1), 2, last.reach),)
    return StagedDecoder(decode=decode, head=head, tail=tail, scale=4, name="sequential"), decode, (head, stages)


def test_a_split_decoder_whose_stages_are_not_exact_crops_within_the_bound():
    """The hand-split pieces chained are the decoder, and incremental decoding through them
    crops and meets the bound."""
    staged, decode, (head, stages) = split_toy_decoder()
    latents = torch.randn(12, 4, 20, 20)
    latents[1:, :, :10, :10] = latents[:1, :, :10, :10]  # the top-left quarter stays put
    with torch.no_grad():
        chained = head(latents[:1])
        for stage in stages:
            chained = stage.run(chained)
        torch.testing.assert_close(chained.movedim(1, -1), decode(latents[:1]), rtol=0, atol=1e-6)
        stats = IncrementalStats()
        out = decode_all(staged, latents, IncrementalOptions(check_every=4, threshold=0.0, max_area=1.0), stats=stats)
        reference = torch.cat([decode(latents[i : i + 1]) for i in range(len(latents))])
    assert stats.fallback is None and stats.crop_decodes > 0
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= 45
    assert torch.equal(out[-1], reference[-1])


def test_a_frame_too_large_for_crops_checks_the_one_before_then_crops_its_own_change():
    """Change below the threshold everywhere piles up frame by frame until one frame's pending
    change covers the whole latent. The crops before it are checked on the frame before (a full
    decode), and from that decode only the frame's own change is pending: a stroke, cropped. So
    such a frame costs one full decode, not two (taef2 at 1024 px, frames 0-31 decoded alone: 6 -> 4
    full decodes, 58.6 -> 46.0 s)."""
    staged, decode, _ = split_toy_decoder()
    generator = torch.Generator().manual_seed(1)
    base = torch.randn(1, 4, 24, 24, generator=generator)
    drift = torch.randn(1, 4, 24, 24, generator=generator)
    frames = []
    for k in range(16):
        frame = base + 0.01 * k * drift  # every position creeps a little each frame
        frame[:, :, 2 + k : 4 + k, 2:4] += 3.0  # a stroke, well over the threshold
        frames.append(frame)
    latents = torch.cat(frames)
    options = IncrementalOptions(check_every=64, threshold=0.1, max_area=0.5)
    stats = IncrementalStats()
    with torch.no_grad():
        out = decode_all(staged, latents, options, stats=stats)
        reference = torch.cat([decode(latents[i : i + 1]) for i in range(len(latents))])
    early_checks = stats.checks - 1  # the last frame's check is the other one
    assert early_checks >= 1, stats.summary()
    # Full decodes: the first frame twice (decode, and the stages compared with it), one per
    # check; none for the frames that were too large for crops.
    assert stats.full_decodes == 2 + stats.checks, stats.summary()
    assert stats.crop_decodes == len(latents) - 2, stats.summary()
    assert stats.failed_checks == 0
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= options.min_psnr
    assert torch.equal(out[-1], reference[-1])


def test_opaque_decoders_decode_in_full_by_default(vae, painting, reference):
    stats = IncrementalStats()
    frames = painting[:6]
    out = decode_all(StagedDecoder.opaque(vae.decode, "taef2 as a black box"), frames, stats=stats)
    assert torch.equal(out, reference[:6])
    assert stats.crop_decodes == 0 and stats.full_decodes == 6 and "opaque" in stats.fallback


def test_learned_context_for_a_local_opaque_decoder(vae):
    from dataclasses import replace

    # 48x48 latent px: on the 24x24 painting no context met the bound before its crops covered more
    # than max_area (measured: 40.2 dB at 4 px, 42.1 dB at 6 px, 8 px covering 63% of the frame).
    painting = stroke_painting(vae, 384, 12, 0)

    # taef2 without its group-norm branches: a real, purely local conv decoder seen as a black box.
    local = replace(vae, decoder_weights={k: v for k, v in vae.decoder_weights.items() if ".pool." not in k})
    options = IncrementalOptions(opaque="learn", context=2, check_every=12)
    stats = IncrementalStats()
    out = decode_all(StagedDecoder.opaque(local.decode, "local"), painting, options, stats=stats)
    reference = full_decodes(local, painting)
    assert stats.fallback is None, stats.fallback
    assert stats.options.context > 2  # the narrowest context missed the bound, so it was widened
    assert stats.crop_decodes > 0
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= options.min_psnr
    assert torch.equal(out[-1], reference[-1])


def test_learning_falls_back_when_no_context_meets_the_bound(vae, painting):
    # A decoder whose every pixel depends on the whole latent (like global attention): its
    # brightness follows the latent's mean, which no crop sees.
    def global_decode(latents):
        return (vae.decode(latents) + 0.05 * latents.mean(dim=(1, 2, 3))[:, None, None, None]).clamp(0, 1)

    options = IncrementalOptions(opaque="learn", check_every=12)
    stats = IncrementalStats()
    out = decode_all(StagedDecoder.opaque(global_decode, "global"), painting, options, stats=stats)
    reference = torch.cat([global_decode(painting[i : i + 1]) for i in range(len(painting))])
    assert stats.fallback and "no crop context" in stats.fallback
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= options.min_psnr
    assert torch.equal(out[-1], reference[-1])


def test_decode_frames_node_incremental(vae, painting, progress):
    frames = {"samples": painting}
    (full,) = run("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=16, white_canvas=False,
                  stroke_map_side_by_side=False)
    (fast,) = run("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=16, white_canvas=False,
                  stroke_map_side_by_side=False, decode="incremental")
    assert fast.shape == full.shape
    assert min(psnr(fast[i], full[i]) for i in range(len(full))) >= IncrementalOptions().min_psnr
    assert torch.equal(fast[-1], vae.decode(painting[-1:])[0])
    assert progress.reports[-1] == (len(full), len(full))
    with pytest.raises(ValueError, match="Decode Frames.*decode.*unknown mode"):
        run("LatentPainterDecodeFrames", vae=vae, frames=frames, chunk_size=16, white_canvas=False,
            stroke_map_side_by_side=False, decode="fast")


def test_latent_stage_split_is_the_decoder(vae, painting):
    from latent_painter.painter.tools.taesd import TAIL_STAGES

    x = painting[20:21]
    assert torch.equal(vae.decode_rest(vae.decode_latent_stage(x)), vae.decode(x))
    # What StagedDecoder.of_taesd claims with exact_stages: its stages chained are the decode, bit for bit.
    chained = vae.decode_latent_stage(x)
    for stage in StagedDecoder.of_taesd(vae).tail:
        chained = stage.run(chained)
    assert torch.equal(chained, vae.decode(x)) and len(TAIL_STAGES) == 3
    with pytest.raises(ValueError, match="decode_rest: features must be"):
        vae.decode_rest(x)


def test_changed_boxes_split_far_changes_and_join_near_ones():
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[2:5, 3:6] = True
    mask[30:33, 31:35] = True
    assert sorted(changed_boxes(mask, gap=8)) == [(2, 5, 3, 6), (30, 33, 31, 35)]
    assert changed_boxes(mask, gap=40) == [(2, 33, 3, 35)]
    mask[2:5, 30:33] = True  # an L of three blobs: rows split first, then columns
    assert sorted(changed_boxes(mask, gap=8)) == [(2, 5, 3, 6), (2, 5, 30, 33), (30, 33, 31, 35)]
    assert changed_boxes(torch.zeros(5, 5, dtype=torch.bool), gap=2) == []


def test_bad_inputs_are_named():
    decode = lambda x: torch.zeros(x.shape[0], 8 * x.shape[2], 8 * x.shape[3], 3)  # noqa: E731
    decoder = StagedDecoder.opaque(decode)
    with pytest.raises(IncrementalError, match="no frames"):
        decode_all(decoder, torch.zeros(0, 4, 8, 8))
    with pytest.raises(IncrementalError, match="NaN"):
        decode_all(decoder, torch.full((2, 4, 8, 8), math.nan))
    with pytest.raises(IncrementalError, match=r"latents \[N,C,h,w\]"):
        decode_all(decoder, torch.zeros(4, 8, 8))
    with pytest.raises(IncrementalError, match="share one latent shape"):
        decode_all(decoder, [torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 8, 9)])
    with pytest.raises(IncrementalError, match="min_psnr"):
        IncrementalOptions(min_psnr=float("nan"))
    with pytest.raises(IncrementalError, match="check_every"):
        IncrementalOptions(check_every=1)
    with pytest.raises(IncrementalError, match="opaque must be"):
        IncrementalOptions(opaque="crop")
    with pytest.raises(IncrementalError, match="head and tail"):
        StagedDecoder(decode=decode, head=decode)
    with pytest.raises(IncrementalError, match="StagedDecoder"):
        decode_all(decode, torch.zeros(2, 4, 8, 8))
    wrong = StagedDecoder.opaque(lambda x: torch.zeros(x.shape[0], 3, 64, 64))
    with pytest.raises(IncrementalError, match=r"expected \[1,H,W,3\]"):
        decode_all(wrong, torch.zeros(2, 4, 8, 8))


def test_render_node_incremental(vae, painting, folders, progress, monkeypatch):
    """Render's decode input runs the same incremental path as Decode Frames (decoded_chunks)."""
    _, outputs = folders
    image_module = pytest.importorskip("PIL.Image")

    def read_webp(path):
        """Every played frame at 10 fps (a frame shown d ms is repeated d / 100 times)."""
        frames = []
        with image_module.open(path) as image:
            for index in range(image.n_frames):
                image.seek(index)
                image.load()
                pixels = torch.tensor(__import__("numpy").array(image.convert("RGB")))
                frames.extend([pixels] * round(image.info["duration"] / 100))
        return torch.stack(frames)

    # A WEBP render blocks its VIDEO output with core ExecutionBlocker, which needs ComfyUI.
    monkeypatch.setattr(host, "blocked_output", lambda message: ("BLOCKED", message))
    latents = painting[:8]
    for mode in ("full", "incremental"):
        run("LatentPainterRender", frames={"samples": latents}, vae=vae, filename_prefix=f"lp/{mode}", format="webp",
            fps=10.0, quality=100, hold_first=0, hold_last=0, pingpong=False, white_canvas=False,
            stroke_map_side_by_side=False, chunk_size=3, decode=mode)
    full = read_webp(outputs / "lp" / "full_00001_.webp")
    fast = read_webp(outputs / "lp" / "incremental_00001_.webp")
    want = output.decode_frames(StagedDecoder.of_taesd(vae), latents, 3, incremental=IncrementalOptions())
    assert torch.equal(fast, video.to_uint8(want))
    assert torch.equal(full, video.to_uint8(output.decode_frames(vae.decode, latents, 3)))
    # The last frame is a full decode of the final latent alone (the full render decoded it in a chunk).
    assert torch.equal(fast[-1], video.to_uint8(vae.decode(latents[-1:]))[0])
    assert not torch.equal(fast, full)
