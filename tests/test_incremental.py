"""Incremental decoding (painter/incremental.py) against full decodes with the real taef2 decoder."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from nodes_support import run
from test_nodes_run import folders  # noqa: F401 - a fixture

from latent_painter.nodes import host
from latent_painter.painter import output, video
from latent_painter.painter.incremental import (
    IncrementalError,
    IncrementalOptions,
    IncrementalStats,
    StagedDecoder,
    changed_boxes,
    decode_all,
    decode_incremental,
    psnr,
)

TAESD_FOLDER = os.environ.get("LATENT_PAINTER_TAESD", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "taesd"))
HAVE_WEIGHTS = (Path(TAESD_FOLDER) / "taef2_decoder.pth").is_file() and (Path(TAESD_FOLDER) / "taef2_encoder.pth").is_file()
needs_weights = pytest.mark.skipif(
    not HAVE_WEIGHTS, reason=f"no taef2 weights in {TAESD_FOLDER} (set LATENT_PAINTER_TAESD to their folder)"
)


@pytest.fixture(scope="module")
def vae():
    from latent_painter.painter.taesd import TinyAutoencoder

    return TinyAutoencoder.from_folder(TAESD_FOLDER, "taef2")


def stroke_painting(vae, size: int, strokes: int, fade: int) -> torch.Tensor:
    """Round strokes (radius 2-3 latent px) putting a photo's latent into a flat canvas, then a
    fade of the rest toward the photo: ``[1 + strokes + fade, C, size/8, size/8]``."""
    from latent_painter.painter.demo import load_photos

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


@needs_weights
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


@needs_weights
def test_chunks_in_give_the_same_frames_as_one_tensor(vae, painting):
    decoder = StagedDecoder.of_taesd(vae)
    options = IncrementalOptions(check_every=16)
    whole = decode_all(decoder, painting, options)
    chunked = decode_all(decoder, iter(painting.split(7)), options)
    assert torch.equal(whole, chunked)


@needs_weights
def test_missed_checks_redecode_the_span_then_fall_back(vae, painting, reference):
    # A staged decoder whose tail is slightly off (an adapter that gets a scale wrong): only the
    # checks against full decodes can tell, and they must.
    off = StagedDecoder(decode=vae.decode, head=vae.decode_latent_stage, tail=lambda f: vae.decode_rest(f) * 0.97,
                        scale=8, name="miscalibrated")
    options = IncrementalOptions(check_every=8)
    stats = IncrementalStats()
    out = decode_all(off, painting, options, stats=stats)
    assert stats.failed_checks >= 1
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= options.min_psnr
    # Each miss tightens the settings; three misses mean full decodes from then on, said in the stats.
    assert stats.options.threshold < options.threshold and stats.options.context > options.context
    assert (stats.failed_checks >= 3) == bool(stats.fallback and "missed" in stats.fallback)
    assert torch.equal(out, reference)  # every span that held crops was decoded again in full


@needs_weights
def test_opaque_decoders_decode_in_full_by_default(vae, painting, reference):
    stats = IncrementalStats()
    frames = painting[:6]
    out = decode_all(StagedDecoder.opaque(vae.decode, "taef2 as a black box"), frames, stats=stats)
    assert torch.equal(out, reference[:6])
    assert stats.crop_decodes == 0 and stats.full_decodes == 6 and "opaque" in stats.fallback


@needs_weights
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


@needs_weights
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


@needs_weights
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


@needs_weights
def test_latent_stage_split_is_the_decoder(vae, painting):
    x = painting[20:21]
    assert torch.equal(vae.decode_rest(vae.decode_latent_stage(x)), vae.decode(x))
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


@needs_weights
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
