"""Streaming render to animated WEBP and MP4: files decoded back with Pillow and PyAV, play order,
atomic writes and interrupts, bad input."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from test_output import Decoder, latents, painting

from latent_painter.painter.render import decoding, play, sink, writers

av = pytest.importorskip("av", reason="the MP4 writer needs PyAV (ComfyUI ships it)")
Image = pytest.importorskip("PIL.Image")

FPS = 10.0  # 100 ms a frame: WEBP durations are whole multiples


def solid(*values: float, size=(16, 24)) -> torch.Tensor:
    """IMAGE frames of one grey each (values 0..1), [n,H,W,3]."""
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None].expand(len(values), *size, 3).clone()


def chunked(images: torch.Tensor, size: int):
    return [images[i : i + size] for i in range(0, images.shape[0], size)]


def read_webp(path) -> tuple[torch.Tensor, list[int]]:
    """Every played frame (a frame of duration d ms is repeated d / (1000 / FPS) times) and the durations."""
    frames, durations = [], []
    with Image.open(path) as image:
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            durations.append(image.info["duration"])
            pixels = torch.tensor(__import__("numpy").array(image.convert("RGB")))
            frames.extend([pixels] * round(image.info["duration"] * FPS / 1000))
    return torch.stack(frames), durations


def read_mp4(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        return torch.stack(frames), stream, float(container.duration) / 1e6


def expected(segments, **settings) -> torch.Tensor:
    """What Decode Frames + Assemble Frames make of the same segments, quantised like the writers."""
    return writers.to_uint8(play.assemble([torch.cat(list(s)) for s in segments], **settings))


def segments_of(decoder, *latent_batches, chunk=3, **kwargs):
    return [decoding.decoded_chunks(decoder, batch, chunk, **kwargs) for batch in latent_batches]


# --- play order ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hold_first,hold_last,pingpong", [(0, 0, False), (2, 3, False), (0, 0, True), (1, 2, True)])
@pytest.mark.parametrize("lengths", [(1,), (2,), (7,), (5, 4), (3, 1, 6)])
def test_played_frames_follow_assemble(lengths, hold_first, hold_last, pingpong, tmp_path):
    """Holds, joins and the way back of a ping-pong in the order Assemble Frames makes, from chunks of
    every size, without any file left in the spill folder."""
    value = iter(range(1, 100))
    segments = []
    for index, length in enumerate(lengths):
        values = [next(value) / 255 for _ in range(length)]
        if index:  # every later segment starts on the previous one's last frame (a transition's join)
            values[0] = segments[-1][-1, 0, 0, 0].item()
        segments.append(solid(*values))
    settings = dict(hold_first=hold_first, hold_last=hold_last, pingpong=pingpong)
    want = expected([[s] for s in segments], **settings)
    for size in (1, 2, 5):
        got = torch.cat(list(sink.played_frames([chunked(s, size) for s in segments], spill_dir=str(tmp_path),
                                                 **settings)))
        assert got[:, 0, 0, 0].tolist() == want[:, 0, 0, 0].tolist(), size
        assert torch.equal(got, want)
    assert os.listdir(tmp_path) == []


def test_way_back_is_read_from_the_spill_file_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(play, "READ_BACK_FRAMES", 4)
    frames = solid(*[k / 255 for k in range(1, 40)])
    read = []
    got = torch.cat(list(sink.played_frames([chunked(frames, 7)], pingpong=True, spill_dir=str(tmp_path),
                                             progress=read.append)))
    assert torch.equal(got, expected([[frames]], pingpong=True))
    assert sum(read) == 37 and max(read) == 4  # frames 37..1, four at a time


def test_different_segment_sizes_are_refused():
    with pytest.raises(ValueError, match="segment 2 has frames of"):
        list(sink.played_frames([[solid(0.1, 0.2)], [solid(0.3, size=(8, 8))]]))


# --- files ------------------------------------------------------------------------------------


def test_lossless_webp_plays_exactly_what_assemble_makes(tmp_path):
    """Two segments (a painting, then frames starting on its last), holds and ping-pong, through a
    real decoder: every played frame of the WEBP equals the assembled frame, and holds are single
    longer frames."""
    decoder = Decoder()
    first = latents(9, seed=1)
    second = torch.cat([first[-1:], latents(5, seed=2)])
    settings = dict(hold_first=2, hold_last=3, pingpong=True)
    want = expected(segments_of(decoder, first, second), **settings)
    path = tmp_path / "out.webp"
    rendered = sink.render(segments_of(decoder, first, second), str(path), writers.Encoding("webp", FPS, 100), **settings)
    got, durations = read_webp(path)
    assert got.shape == want.shape and torch.equal(got, want)
    assert rendered.frames == want.shape[0] and (rendered.width, rendered.height) == (want.shape[2], want.shape[1])
    assert durations[0] == 300 and 400 in durations and sum(durations) == 100 * want.shape[0]
    assert sorted(os.listdir(tmp_path)) == ["out.webp"]


def test_webp_encodes_only_what_changed(tmp_path):
    """A frame that differs from the previous one in a small box costs a small ANMF chunk, and the
    frames still come back exact."""
    frames = torch.rand(6, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    for k in range(1, 6):
        frames[k] = frames[k - 1]
        frames[k, 10 + k : 15 + k, 20:27] = torch.rand(5, 7, 3)
    path = tmp_path / "boxes.webp"
    sink.render([[frames]], str(path), writers.Encoding("webp", FPS, 100))
    got, _ = read_webp(path)
    assert torch.equal(got, writers.to_uint8(frames))
    full = tmp_path / "full.webp"
    sink.render([[frames[:1]]], str(full), writers.Encoding("webp", FPS, 100))
    assert path.stat().st_size < 2 * full.stat().st_size  # five more frames cost less than one more full frame


def test_lossy_webp_is_close(tmp_path):
    """Lossy quality 80 on smooth frames (what decoders make): close to the frames, much smaller."""
    coarse = torch.rand(6, 3, 4, 5, generator=torch.Generator().manual_seed(3))
    frames = torch.nn.functional.interpolate(coarse, size=(64, 80), mode="bicubic", align_corners=False)
    frames = frames.clamp(0, 1).permute(0, 2, 3, 1).contiguous()
    lossy, lossless = tmp_path / "lossy.webp", tmp_path / "lossless.webp"
    sink.render([[frames]], str(lossy), writers.Encoding("webp", FPS, 80), hold_last=1)
    sink.render([[frames]], str(lossless), writers.Encoding("webp", FPS, 100), hold_last=1)
    got, _ = read_webp(lossy)
    want = expected([[frames]], hold_last=1)
    assert got.shape == want.shape
    assert (got.float() - want.float()).abs().mean() < 3
    assert lossy.stat().st_size < lossless.stat().st_size / 2


def test_mp4_frames_size_rate_and_order(tmp_path):
    """Frames of increasing brightness, holds and ping-pong: PyAV reads back the frame count, size,
    rate, duration and the brightness order."""
    frames = solid(*[0.1 + 0.05 * k for k in range(12)], size=(32, 48))
    settings = dict(hold_first=1, hold_last=2, pingpong=True)
    want = expected([[frames]], **settings)
    path = tmp_path / "out.mp4"
    rendered = sink.render([chunked(frames, 5)], str(path), writers.Encoding("mp4", 12.5, 100), **settings)
    got, stream, seconds = read_mp4(path)
    assert got.shape == want.shape and rendered.frames == want.shape[0]
    assert (stream.width, stream.height) == (48, 32) and float(stream.average_rate) == 12.5
    assert seconds == pytest.approx(want.shape[0] / 12.5, abs=0.05)
    assert (got.float().mean(dim=(1, 2, 3)) - want.float().mean(dim=(1, 2, 3))).abs().max() < 3


def test_mp4_carries_metadata(tmp_path):
    path = tmp_path / "meta.mp4"
    sink.render([[solid(0.2, 0.4)]], str(path), writers.Encoding("mp4", FPS), metadata={"prompt": '{"1": 2}'})
    with av.open(str(path)) as container:
        assert container.metadata.get("prompt") == '{"1": 2}'


def test_white_canvas_and_stroke_map_stream_like_decode_frames(tmp_path):
    source = painting(7)
    decoder = Decoder()
    kwargs = dict(white_canvas=True, stroke_map=source)
    want = writers.to_uint8(decoding.decode_frames(decoder, source, 2, **kwargs))
    path = tmp_path / "maps.webp"
    sink.render([decoding.decoded_chunks(decoder, source, 2, **kwargs)], str(path), writers.Encoding("webp", FPS, 100))
    got, _ = read_webp(path)
    assert torch.equal(got, want) and got.shape[2] == 2 * 8 * source.frames.shape[3]


@pytest.mark.parametrize("format", ["webp", "mp4"])
def test_file_grows_during_the_render_and_appears_only_at_the_end(format, tmp_path):
    path = tmp_path / f"grow.{format}"
    partial = sink.temporary_path(str(path))
    sizes = []
    side = 128 if format == "mp4" else 48  # PyAV writes in 256 KiB blocks

    def chunks():
        for k in range(16):  # x264 keeps ~40 frames of look-ahead before its first packet
            sizes.append(os.path.getsize(partial) if os.path.exists(partial) else None)
            assert not path.exists()
            yield torch.rand(8, side, side, 3, generator=torch.Generator().manual_seed(k))

    sink.render([chunks()], str(path), writers.Encoding(format, FPS))
    assert path.exists() and not os.path.exists(partial)
    grown = [s for s in sizes if s is not None]
    assert len(grown) >= 4 and grown[-1] > grown[0], sizes


class Interrupted(Exception):
    """Like ComfyUI's InterruptProcessingException: not a ValueError."""


@pytest.mark.parametrize("format", ["webp", "mp4"])
@pytest.mark.parametrize("pingpong", [False, True])
def test_interrupt_mid_render_leaves_no_file(format, pingpong, tmp_path):
    decoder = Decoder()
    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 3:
            raise Interrupted("cancelled")

    chunks = decoding.decoded_chunks(decoder, latents(20), 2, progress=progress)
    with pytest.raises(Interrupted):
        sink.render([chunks], str(tmp_path / f"x.{format}"), writers.Encoding(format, FPS), pingpong=pingpong)
    assert os.listdir(tmp_path) == []
    assert decoder.calls == [2, 2, 2]


def test_interrupt_on_the_way_back_leaves_no_file(tmp_path):
    def back(frames):
        raise Interrupted("cancelled")

    with pytest.raises(Interrupted):
        sink.render([[solid(*[k / 40 for k in range(30)])]], str(tmp_path / "x.webp"), writers.Encoding("webp", FPS),
                     pingpong=True, progress=back)
    assert os.listdir(tmp_path) == []


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings,words",
    [
        (("gif", FPS), "format must be one of webp, mp4"),
        (("mp4", 0.0), "fps must be a number above 0 and at most 1000"),
        (("mp4", float("nan")), "fps must be"),
        (("webp", 2000.0), "fps must be a number above 0 and at most 1000"),
        (("webp", FPS, 101), "quality must be a whole number from 0 to 100"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(settings, words, tmp_path):
    def never():
        raise AssertionError("decoded although the settings are wrong")
        yield

    with pytest.raises(ValueError, match=words):
        sink.render([never()], str(tmp_path / "x.mp4"), writers.Encoding(*settings))
    assert os.listdir(tmp_path) == []


def test_odd_size_is_refused_for_mp4(tmp_path):
    with pytest.raises(ValueError, match="H.264 needs an even width and height"):
        sink.render([[solid(0.5, size=(15, 16))]], str(tmp_path / "odd.mp4"), writers.Encoding("mp4", FPS))
    assert os.listdir(tmp_path) == []


def test_missing_pyav_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(writers.MissingEncoder, match="needs the Python package 'av'.*pip install av"):
        sink.render([[solid(0.5)]], str(tmp_path / "x.mp4"), writers.Encoding("mp4", FPS))
    assert os.listdir(tmp_path) == []


def test_bad_holds_and_absurd_counts():
    with pytest.raises(ValueError, match="hold_last must be a whole number from 0"):
        play.played_count(10, 0, -1, False)
    with pytest.raises(ValueError, match="played frames must be a whole number from 1 to 100000"):
        play.played_count(60_000, 0, 0, True)
    assert play.played_count(15, 2, 3, True) == 15 + 5 + 13
