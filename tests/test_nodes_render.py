"""The Render node: inputs to a file in the output folder, the node's animated preview, the VIDEO
hand-off, progress and Cancel, errors named by input. The host is faked only where it must be:
the progress bar, the output folder, and the two host objects (core VIDEO, ExecutionBlocker)."""

from __future__ import annotations

import os

import pytest
import torch
from nodes_support import Interrupted, Progress, results, run
from test_nodes_run import LinearVAE, folders  # noqa: F401 - folders is a fixture
from test_video import FPS, read_mp4, read_webp

from latent_painter.nodes import host
from latent_painter.painter.render import composite, decoding, play, writers

pytest.importorskip("av")


def settings(**changes):
    base = dict(filename_prefix="lp/render", format="webp", fps=FPS, quality=100, hold_first=0, hold_last=2,
                pingpong=False, white_canvas=False, stroke_map_side_by_side=False, chunk_size=3)
    return {**base, **changes}


def frames(n=7, seed=0):
    return {"samples": torch.randn(n, 4, 4, 6, generator=torch.Generator().manual_seed(seed))}


def coverage(n=7):
    growing = torch.zeros(n, 4, 6)
    for k in range(1, n):
        growing[k] = growing[k - 1]
        growing[k, :, (k - 1) % 6] = 1.0
    return composite.coverage_mask(growing)


def coloured(n=7):
    """Stroke maps with per-frame strokes in several channels (what Paint's stroke_maps carries)."""
    cover = coverage(n)
    strokes = torch.zeros_like(cover)
    channels = torch.full(cover.shape, -1, dtype=torch.int16)
    for k in range(1, n):
        strokes[k, :, (k - 1) % 6] = 1.0
        channels[k, :, (k - 1) % 6] = k % 4
    return composite.StrokeMaps(cover, strokes, channels, 4)


@pytest.fixture
def handed_on(monkeypatch):
    """host.video_from_file and host.blocked_output recorded (core VIDEO needs ComfyUI)."""
    calls = []
    monkeypatch.setattr(host, "video_from_file", lambda path: calls.append(("video", path)) or ("VIDEO", path))
    monkeypatch.setattr(host, "blocked_output", lambda message: calls.append(("blocked", message)) or ("BLOCKED", message))
    return calls


def test_render_two_segments_to_webp_plays_what_decode_and_assemble_make(folders, handed_on, progress):
    _, outputs = folders
    vae = LinearVAE()
    first, maps = frames(7), coverage(7)
    second = {"samples": torch.cat([first["samples"][-1:], frames(4, seed=1)["samples"]])}
    second_maps = coverage(5)
    result = run("LatentPainterRender", frames=first, vae=vae, stroke_map=maps, frames_2=second, stroke_map_2=second_maps,
                 **settings(white_canvas=True, stroke_map_side_by_side=True, hold_first=1, pingpong=True))

    decoded = []
    for latent, mask in ((first, maps), (second, second_maps)):
        decoded.append(decoding.decode_frames(
            LinearVAE().decode, latent["samples"], 3, coverage=mask, white_canvas=True,
            stroke_map=composite.StrokeMaps.from_coverage(mask, 4)))
    want = writers.to_uint8(play.assemble(decoded, hold_first=1, hold_last=2, pingpong=True))

    text = result["ui"].pop("text")
    assert result["ui"] == {"images": [{"filename": "render_00001_.webp", "subfolder": "lp", "type": "output"}],
                            "animated": (True,)}
    # One line per segment: how it was decoded (LinearVAE has no known structure: in full) and how fast.
    assert len(text) == 2 and all(line.startswith("Render: decoded full: ") for line in text), text
    assert os.listdir(outputs / "lp") == ["render_00001_.webp"]
    got, _ = read_webp(outputs / "lp" / "render_00001_.webp")
    assert torch.equal(got, want)
    video_out, count = result["result"]
    assert count == want.shape[0]
    assert video_out[0] == "BLOCKED" and "mp4 renders only" in video_out[1] and "set format to mp4" in video_out[1]
    assert progress.totals == [7 + 5 + (7 + 5 - 2)] and progress.reports[-1] == (22, 22)
    dones = [done for done, _ in progress.reports]
    assert dones == sorted(dones) and vae.calls == [3, 3, 1, 3, 1, 1]  # each segment's last frame alone


def test_coloured_stroke_maps_show_as_in_decode_frames(folders, handed_on, progress):
    """stroke_maps (the last inputs) colour the side-by-side map by channel, as Decode Frames does,
    and win over the grey stroke_map when both are connected."""
    _, outputs = folders
    first, second = frames(7), frames(5, seed=1)
    maps, second_maps = coloured(7), coloured(5)
    result = run("LatentPainterRender", frames=first, vae=LinearVAE(), stroke_map=coverage(7), stroke_maps=maps,
                 frames_2=second, stroke_maps_2=second_maps,
                 **settings(white_canvas=True, stroke_map_side_by_side=True))
    decoded = [results("LatentPainterDecodeFrames", vae=LinearVAE(), frames=latent, chunk_size=3, white_canvas=True,
                   stroke_map_side_by_side=True, stroke_maps=m)[0] for latent, m in ((first, maps), (second, second_maps))]
    want = writers.to_uint8(play.assemble(decoded, hold_last=2))
    got, _ = read_webp(outputs / "lp" / result["ui"]["images"][0]["filename"])
    assert torch.equal(got, want)
    right = got[:, :, got.shape[2] // 2:].to(torch.int16)
    # Coloured strokes: some map pixels are far from grey (a grey map has equal R, G and B).
    assert int((right.amax(dim=-1) - right.amin(dim=-1)).max()) > 100


def test_render_mp4_hands_the_file_to_core_video_nodes(folders, handed_on, progress):
    _, outputs = folders
    result = run("LatentPainterRender", frames=frames(9), vae=LinearVAE(), **settings(format="mp4", hold_last=3),
                 prompt={"1": {"class_type": "LatentPainterRender"}}, extra_pnginfo={"workflow": {"nodes": []}})
    path = outputs / "lp" / "render_00001_.mp4"
    assert result["ui"]["images"][0]["filename"] == "render_00001_.mp4" and result["ui"]["animated"] == (True,)
    assert result["result"] == (("VIDEO", str(path)), 12)
    got, stream, _ = read_mp4(path)
    assert got.shape == (12, 32, 48, 3) and float(stream.average_rate) == FPS
    import av

    with av.open(str(path)) as container:
        assert '"LatentPainterRender"' in container.metadata["prompt"] and container.metadata["workflow"] == '{"nodes": []}'
    second = run("LatentPainterRender", frames=frames(3), vae=LinearVAE(), **settings(format="mp4"))
    assert second["ui"]["images"][0]["filename"] == "render_00002_.mp4"


@pytest.mark.parametrize("format", ["webp", "mp4"])
def test_cancel_leaves_no_file(folders, handed_on, monkeypatch, format):
    _, outputs = folders
    cancel = Progress(interrupt_after=2)
    monkeypatch.setattr(host, "progress", cancel)
    vae = LinearVAE()
    with pytest.raises(Interrupted):
        run("LatentPainterRender", frames=frames(20), vae=vae, **settings(format=format, pingpong=True))
    assert vae.calls == [3, 3, 3]
    assert not (outputs / "lp").exists() or os.listdir(outputs / "lp") == []


@pytest.mark.parametrize(
    "changes,inputs,words",
    [
        ({"white_canvas": True}, {}, "Render: stroke_maps: white_canvas needs them"),
        ({"stroke_map_side_by_side": True}, {"stroke_map": coverage(7), "frames_3": frames(4)},
         "Render: stroke_maps_3: stroke_map_side_by_side needs them"),
        ({}, {"stroke_map_2": coverage(7)}, "Render: stroke_map_2: is connected but its frames are not; connect frames_2"),
        ({}, {"stroke_maps_4": coloured(7)}, "Render: stroke_maps_4: is connected but its frames are not; connect frames_4"),
        ({}, {"stroke_maps": coverage(7)}, "Render: stroke_maps: is not a painting's stroke maps"),
        ({"stroke_map_side_by_side": True}, {"stroke_maps": coloured(5)},
         "Render: stroke_maps: has shape (5, 4, 6) but frames needs (7, 4, 6)"),
        ({"fps": 0.0}, {}, "Render: fps must be a number above 0"),
        ({"format": "gif"}, {}, "Render: format must be one of webp, mp4"),
        ({"hold_last": 100_000}, {}, "played frames must be a whole number from 1 to 100000"),
        ({}, {"frames_2": {"samples": torch.zeros(2, 4, 3, 4, 6)}}, "Render: frames_2: this is a video latent"),
        ({}, {"stroke_map": coverage(5)}, "Render: stroke_map: has shape (5, 4, 6) but frames needs (7, 4, 6)"),
        ({"stroke_map_side_by_side": True}, {"stroke_map": coverage(7), "frames_2": frames(3, seed=2),
                                            "stroke_map_2": coverage(3)[:, :2]}, "Render: stroke_map_2: has shape (3, 2, 6)"),
    ],
)
def test_bad_inputs_are_named_and_write_nothing(folders, handed_on, progress, changes, inputs, words):
    _, outputs = folders
    vae = LinearVAE()
    if "stroke_map" in inputs and not changes:
        changes = {"white_canvas": True}
    with pytest.raises(ValueError) as error:
        run("LatentPainterRender", frames=frames(7), vae=vae, **settings(**changes), **inputs)
    assert words in str(error.value)
    assert vae.calls == []
    assert not (outputs / "lp").exists() or os.listdir(outputs / "lp") == []


def test_segments_of_different_sizes_are_refused(folders, handed_on, progress):
    with pytest.raises(ValueError, match="Render: segment 2 has frames of"):
        run("LatentPainterRender", frames=frames(4), vae=LinearVAE(),
            frames_2={"samples": torch.zeros(3, 4, 5, 5)}, **settings())
