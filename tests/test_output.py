"""Decoding in bounded chunks, white canvas, stroke maps, assembling and frame rate."""

from __future__ import annotations

import pytest
import torch

from latent_painter.painter.engine.limits import LIMITS
from latent_painter.painter.render import composite, decoding, play
from latent_painter.painter.engine.timeline import Painting

C, h, w = 4, 6, 5


class Decoder:
    """A small fixed decoder with the VAE interface: 3x3 conv mixing neighbours, then an 8x
    transposed-conv upsampler and a sigmoid. Records the batch size of every call.

    CPU convolutions pick algorithms by batch size, so a batched decode can differ from a
    per-sample one in the last bit; decoding sample by sample inside makes this decoder batch
    invariant, so chunked and one-shot decoding must agree bit for bit."""

    def __init__(self, channels: int = C, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.mix = torch.nn.Conv2d(channels, 8, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(8, 3, kernel_size=8, stride=8)
        with torch.no_grad():
            for param in [*self.mix.parameters(), *self.up.parameters()]:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        self.calls: list[int] = []

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        self.calls.append(samples.shape[0])
        decoded = [torch.sigmoid(self.up(torch.relu(self.mix(sample[None])))) for sample in samples]
        return torch.cat(decoded).permute(0, 2, 3, 1)


def latents(n: int = 11, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, C, h, w, generator=torch.Generator().manual_seed(seed))


def painting(n: int = 7) -> Painting:
    """A hand-made painting: coverage grows column by column, one channel per frame."""
    frames_ = latents(n)
    frames_[-1] = frames_[-2]  # a hold on the final latent
    coverage = torch.zeros(n, h, w)
    strokes = torch.zeros(n, h, w)
    channels = torch.full((n, h, w), -1, dtype=torch.int16)
    for k in range(1, n):
        column = (k - 1) % w
        strokes[k, :, column] = 1.0
        channels[k, :, column] = k % C
        coverage[k] = coverage[k - 1]
        coverage[k, :, column] += 1.0
    return Painting(frames_, strokes, channels, coverage, torch.zeros(n, dtype=torch.int64))


# --- decode_frames ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 4, 11, 64])
def test_chunked_decode_equals_one_shot(chunk):
    decoder = Decoder()
    x = latents()
    with torch.no_grad():
        whole = decoder(x)
    out = decoding.decode_frames(decoder, x, chunk)
    assert out.shape == (11, h * 8, w * 8, 3)
    assert out.dtype == torch.float32
    assert torch.equal(out, whole)
    # Every call but the one-shot reference got at most one chunk; the last frame is decoded alone, as
    # VAE Decode of the final latent would decode it.
    chunks = [min(chunk, 11 - i) for i in range(0, 11, chunk)]
    assert decoder.calls[1:] == chunks[:-1] + ([chunks[-1] - 1] if chunks[-1] > 1 else []) + [1]


def test_progress_reports_each_chunk():
    seen = []
    decoding.decode_frames(Decoder(), latents(), 4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 11), (8, 11), (10, 11), (11, 11)]


def test_output_is_allocated_once(monkeypatch):
    real_empty = torch.empty
    full_size = []

    def counting_empty(*args, **kwargs):
        tensor = real_empty(*args, **kwargs)
        if tensor.dim() == 4 and tensor.shape[0] == 11:
            full_size.append(tensor)
        return tensor

    monkeypatch.setattr(torch, "empty", counting_empty)
    out = decoding.decode_frames(Decoder(), latents(), 3)
    assert len(full_size) == 1
    assert out.data_ptr() == full_size[0].data_ptr()


def test_interrupt_in_progress_returns_nothing_and_stops_decoding():
    decoder = Decoder()

    class Interrupted(Exception):
        pass

    def progress(done, total):
        if done >= 6:
            raise Interrupted

    result = None
    with pytest.raises(Interrupted):
        result = decoding.decode_frames(decoder, latents(), 3, progress=progress)
    assert result is None
    assert decoder.calls == [3, 3]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(frames=torch.zeros(0, C, h, w)), "empty"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(chunk_size=2.5), "chunk_size"),
        (dict(coverage=torch.zeros(11, h, w + 1), white_canvas=True), "coverage"),
        (dict(coverage=torch.zeros(10, h, w)), "coverage"),
        (dict(white_canvas=True), "coverage"),
        (dict(stroke_map=True), "Painting"),
        (dict(frames=torch.zeros(C, h, w)), "[N,C,h,w]"),
    ],
)
def test_decode_frames_refuses_bad_input(kwargs, words):
    decoder = Decoder()
    args = dict(frames=latents(), chunk_size=4) | kwargs
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        decoding.decode_frames(decoder, args.pop("frames"), args.pop("chunk_size"), **args)
    assert decoder.calls == []


def test_decoder_of_wrong_shape_is_named():
    with pytest.raises(ValueError, match="decoder"):
        decoding.decode_frames(lambda s: torch.zeros(s.shape[0], 8, 8), latents(), 4)


# --- white canvas -------------------------------------------------------------------------


def test_white_canvas_keeps_paper_white_and_ends_exact():
    decoder = Decoder()
    x = latents(5)
    coverage = torch.zeros(5, h, w)
    coverage[1:, 1:4, 0:2] = 1.0  # a painted block
    coverage[2:, 1:4, 3] = 0.25  # another, with a one-pixel unpainted gap (column 2) between
    out = decoding.decode_frames(decoder, x, 2, coverage=coverage, white_canvas=True)
    with torch.no_grad():
        plain = decoder(x)
    # Frame 0: nothing painted, all paper.
    assert torch.all(out[0] == 1.0)
    # Interior of the painted block: exactly the decoded pixels; far from it: exactly white.
    assert torch.equal(out[2, 16:24, 0:8], plain[2, 16:24, 0:8])
    assert torch.all(out[2, 40:, :] == 1.0)
    # The one-latent-pixel gap survives as a white vein: its middle pixels are paper, its sides feathered.
    assert torch.all(out[2, 12:28, 19:21] == 1.0)
    # The last frame shows the decoded final latent unmasked, bit for bit.
    assert torch.equal(out[-1], plain[-1])


def test_white_canvas_shows_holds_of_the_final_frame_unmasked():
    decoder = Decoder()
    p = painting()
    out = decoding.decode_frames(decoder, p, 4, white_canvas=True)
    with torch.no_grad():
        plain = decoder(p.frames)
    assert torch.equal(out[-1], plain[-1])
    assert torch.equal(out[-2], plain[-2])  # equal latent to the final one: a hold
    assert torch.all(out[0] == 1.0)


def test_composite_white_nearest_makes_blocks_soft_rounds_them():
    images = torch.zeros(1, 16, 16, 3)
    coverage = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    soft = composite.composite_white(images, coverage)
    block = composite.composite_white(images, coverage, upsample="nearest")
    assert torch.all(block[0, :8, :8] == 0.0) and torch.all(block[0, 8:] == 1.0) and torch.all(block[0, :, 8:] == 1.0)
    # Soft: the painted latent pixel shows fully at its centre, fades out across its edge, and its
    # block corner next to the unpainted neighbours is cut round.
    paper = soft[0, ..., 0]
    assert paper[3, 3] == 0.0 and paper[12, 12] == 1.0
    assert 0.0 < paper[3, 8] < 1.0 and 0.0 < paper[8, 3] < 1.0
    assert paper[7, 7] > paper[7, 3]
    with pytest.raises(ValueError, match="upsample"):
        composite.composite_white(images, coverage, upsample="bilinear")


# --- stroke map ---------------------------------------------------------------------------


def test_stroke_map_colours():
    coverage = torch.tensor([[[0.0, 1.0, 2.0, 4.0, 4.0]]])
    strokes = torch.tensor([[[0.0, 1.0, 1.0, 1.0, 0.5]]])
    channels = torch.tensor([[[-1, 0, 2, -2, 1]]], dtype=torch.int16)
    rgb = composite.render_stroke_map(coverage, strokes, channels, 4, size=(2, 10), upsample="nearest")
    assert rgb.shape == (1, 2, 10, 3)
    # Nearest upsampling: each latent pixel is a 2x2 block.
    assert torch.equal(rgb[0, :, 0::2], rgb[0, :, 1::2]) and torch.equal(rgb[0, 0], rgb[0, 1])
    px = rgb[0, 0, 0::2]
    assert px[0].tolist() == [0.0, 0.0, 0.0]  # never painted: black
    assert px[1].tolist() == [1.0, 0.0, 0.0]  # channel 0 of 4: hue 0, red
    assert px[2].tolist() == [0.0, 1.0, 1.0]  # channel 2 of 4: hue 1/2, cyan
    assert px[3].tolist() == [1.0, 1.0, 1.0]  # several channels: white
    # Channel 1 (hue 1/4 = (0.5, 1, 0)) at half strength over the grey of a full-coverage pixel.
    assert torch.allclose(px[4], torch.tensor([0.75, 1.0, 0.5]))


def test_stroke_map_grey_is_normalised_per_frame():
    coverage = torch.tensor([[[0.0, 1.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[3.0, 6.0], [0.0, 0.0]]])
    none = torch.zeros_like(coverage)
    rgb = composite.render_stroke_map(coverage, none, torch.full(coverage.shape, -1), 4, upsample="nearest")
    assert rgb.shape == (3, 16, 16, 3)
    grey = rgb[:, ::8, ::8, 0]
    assert torch.equal(grey[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.all(grey[1] == 0.0)  # nothing yet: all black, no division by zero
    assert torch.equal(grey[2], torch.tensor([[0.5, 1.0], [0.0, 0.0]]))
    assert torch.equal(rgb[..., 0], rgb[..., 2])  # grey


def test_stroke_map_refuses_unknown_channel():
    z = torch.zeros(1, 2, 2)
    with pytest.raises(ValueError, match="num_channels"):
        composite.render_stroke_map(z, z, torch.full((1, 2, 2), 4), 4)


def test_stroke_map_soft_upsampling_keeps_the_colours_and_rounds_the_blocks():
    coverage = torch.zeros(1, 5, 5)
    coverage[0, 1:4, 1:4] = 1.0
    strokes = torch.zeros(1, 5, 5)
    strokes[0, 1:4, 1:4] = 1.0
    channels = torch.full((1, 5, 5), -1, dtype=torch.int16)
    channels[0, 1:4, 1:4] = 0
    soft = composite.render_stroke_map(coverage, strokes, channels, 4)
    blocks = composite.render_stroke_map(coverage, strokes, channels, 4, upsample="nearest")
    assert torch.allclose(soft[0, 20, 20], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # inside: channel 0's red
    assert float(soft[0, :2, :2].max()) < 1e-3  # far outside: black
    assert torch.equal(blocks[0, 8, 8], torch.tensor([1.0, 0.0, 0.0]))  # the block's corner pixel is red...
    assert float(soft[0, 8, 8, 0]) < 0.5  # ...the soft map's is rounded off
    edge = soft[0, 20, :20, 0]
    assert int(((edge > 0.02) & (edge < 0.98)).sum()) >= 3  # a soft edge, not a jump
    with pytest.raises(ValueError, match="upsample"):
        composite.render_stroke_map(coverage, strokes, channels, 4, upsample="bicubic")


def test_hue_colours_are_saturated_and_distinct():
    colours = composite.hue_colours(16)
    assert torch.all(colours.amax(dim=1) == 1.0) and torch.all(colours.amin(dim=1) == 0.0)
    assert torch.unique(colours, dim=0).shape[0] == 16


def test_decode_with_stroke_map_beside():
    decoder = Decoder()
    p = painting()
    out = decoding.decode_frames(decoder, p, 3, stroke_map=True)
    with torch.no_grad():
        plain = decoder(p.frames)
    assert out.shape == (7, h * 8, 2 * w * 8, 3)
    assert torch.equal(out[:, :, : w * 8], plain)
    maps = composite.render_stroke_map(p.coverage, p.strokes, p.channels, C, size=(h * 8, w * 8))
    assert torch.equal(out[:, :, w * 8 :], maps)
    # The same maps given on their own draw the same thing.
    alone = composite.StrokeMaps(p.coverage, p.strokes, p.channels, C)
    assert torch.equal(decoding.decode_frames(decoder, p.frames, 3, stroke_map=alone)[:, :, w * 8 :], maps)


def test_decode_with_white_canvas_and_stroke_map_uses_painting_coverage():
    decoder = Decoder()
    p = painting()
    out = decoding.decode_frames(decoder, p, 3, stroke_map=True, white_canvas=True)
    alone = decoding.decode_frames(decoder, p.frames, 3, coverage=p.coverage, white_canvas=True)
    assert torch.equal(out[:, :, : w * 8], alone)


# --- assemble -----------------------------------------------------------------------------


def seq(*values: float) -> torch.Tensor:
    """A sequence whose frame k is constant values[k]: easy to read back."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 2, 3, 3).contiguous()


def values(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def test_assemble_drops_duplicate_join_frames_only():
    out = play.assemble([seq(0, 1, 2), seq(2, 3), seq(4, 5)])
    assert values(out) == [0, 1, 2, 3, 4, 5]
    assert out.shape == (6, 2, 3, 3)


def test_assemble_holds_and_pingpong():
    a = seq(0, 1, 2, 3)
    assert values(play.assemble([a], hold_first=2, hold_last=3)) == [0, 0, 0, 1, 2, 3, 3, 3, 3]
    assert values(play.assemble([a], pingpong=True)) == [0, 1, 2, 3, 2, 1]
    assert values(play.assemble([a, seq(3, 4)], hold_first=1, hold_last=1, pingpong=True)) == [
        0, 0, 1, 2, 3, 4, 4, 3, 2, 1,
    ]
    assert values(play.assemble(seq(7), hold_first=1, hold_last=2, pingpong=True)) == [7, 7, 7, 7]
    assert values(play.assemble([seq(0, 1)], pingpong=True)) == [0, 1]


def test_assemble_keeps_dtype_and_mixed_inputs():
    out = play.assemble([seq(0, 1), seq(1, 2).double()])
    assert out.dtype == torch.float32
    assert values(out) == [0, 1, 2]


def test_assemble_refuses_absurd_counts_before_allocating():
    big = seq(0, 1)
    with pytest.raises(ValueError, match="hold_last must be a whole number from 0 to 100000"):
        play.assemble([big], hold_last=10**12)
    with pytest.raises(ValueError, match="played frames must be a whole number from 1 to 100000"):
        play.assemble([big] * 3, hold_first=int(LIMITS["played frames"].high))
    with pytest.raises(ValueError, match="hold_first"):
        play.assemble([big], hold_first=-1)
    with pytest.raises(ValueError, match="hold_last"):
        play.assemble([big], hold_last=1.5)
    with pytest.raises(ValueError, match="at least one"):
        play.assemble([])
    with pytest.raises(ValueError, match="segment 2 has frames of"):
        play.assemble([big, torch.zeros(2, 2, 4, 3)])
    with pytest.raises(ValueError, match="segment 2 has no frames"):
        play.assemble([big, torch.zeros(0, 2, 3, 3)])


def test_assemble_limit_is_exact():
    one = seq(0, 1)
    assert play.assemble([one], hold_last=int(LIMITS["played frames"].high) - 2).shape[0] == int(LIMITS["played frames"].high)
    with pytest.raises(ValueError):
        play.assemble([one], hold_last=int(LIMITS["played frames"].high) - 1)


def test_fps_for_duration():
    assert play.fps_for_duration(1121, 20) == pytest.approx(56.05)
    assert play.fps_for_duration(40, 20.0) == 2.0
    for bad in [(0, 20), (10, 0), (10, -1), (10, float("inf")), (2.5, 1)]:
        with pytest.raises(ValueError):
            play.fps_for_duration(*bad)


# --- with the real TAESD decoder, when its weights are at hand ------------------------------


def test_decode_frames_with_real_taesd(taesd_folder):
    folder = taesd_folder
    taesd = pytest.importorskip("latent_painter.painter.tools.taesd")
    from skimage import data

    tae = taesd.TinyAutoencoder.from_folder(folder, "taef2")
    photo = torch.from_numpy(data.astronaut()[::8, ::8].copy()).float()[None] / 255.0  # 64x64
    final = tae.encode(photo)[0].contiguous()
    n = 3
    painted = torch.stack([final * k / (n - 1) for k in range(n)])
    painted[-1] = final
    coverage = torch.zeros(n, *final.shape[1:])
    coverage[1:, :4] = 1.0  # the top half painted from frame 1 on
    out = decoding.decode_frames(tae.decode, painted, 2, coverage=coverage, white_canvas=True)
    assert out.shape == (n, 64, 64, 3)
    assert torch.all(out[0] == 1.0)
    assert torch.all(out[:-1, 40:] == 1.0)  # the bottom half is paper until the end
    # The last chunk holds the final latent alone, so the last frame is its decode bit for bit.
    assert torch.equal(out[-1], tae.decode(final[None])[0])
    # Decoding in chunks matches decoding everything at once up to the decoder's float rounding.
    whole = decoding.decode_frames(tae.decode, painted, n)
    assert torch.allclose(out[1, :24], whole[1, :24], atol=1e-5)
    assert torch.allclose(out[-1], whole[-1], atol=1e-5)
