"""Finding the TAESD weights (painter/tools/weights.py): the order of the places, ComfyUI's vae_approx,
the cache, the pinned download (against a local HTTP server; never the real URL) and the demo's
one-line message on a machine that has nothing."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from latent_painter.painter.tools import taesd, taesd_files, weights
from latent_painter.painter.tools.weights import WeightsNotFound, find_or_download, find_weights

PACK = Path(__file__).resolve().parents[1]


def write_pair(folder: Path, family: str, channels: int, parts=("encoder", "decoder"), seed: int = 0) -> None:
    """A TAESD pair in the published layout (no pool branches) with small random weights."""
    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part in parts:
        layout, c_in, c_out = (
            (taesd.ENCODER_LAYOUT, 3, channels) if part == "encoder" else (taesd.DECODER_LAYOUT, channels, 3)
        )
        shapes = taesd_files._expected_shapes(layout, c_in, c_out)
        state = {key: 0.05 * torch.randn(shape, generator=generator) for key, shape in shapes.items()}
        torch.save(state, folder / f"{family}_{part}.pth")


@pytest.fixture
def comfy(tmp_path):
    """A ComfyUI tree with the pack in custom_nodes/ and an empty models/vae_approx."""
    root = tmp_path / "ComfyUI"
    pack = root / "custom_nodes" / "latent_painter"
    pack.mkdir(parents=True)
    (root / "models" / "vae_approx").mkdir(parents=True)
    return pack


def no_env(tmp_path, **extra):
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}


# --- the order of the places ---------------------------------------------------------------------


def test_each_place_in_turn(tmp_path, comfy):
    env = no_env(tmp_path)
    vae_approx = comfy.parents[1] / "models" / "vae_approx"
    beside = comfy.parent / "shared" / "data" / "taesd"
    cache = weights.cache_folder(env)
    assert cache == tmp_path / "cache" / "latent-painter" / "taesd"
    with pytest.raises(WeightsNotFound):
        find_weights(environ=env, pack_root=comfy)

    write_pair(cache, "taef2", 32)
    assert find_weights(environ=env, pack_root=comfy).place == "cache"
    write_pair(beside, "taef2", 32)
    assert find_weights(environ=env, pack_root=comfy).folder == beside
    write_pair(vae_approx, "taesd", 4)
    found = find_weights(environ=env, pack_root=comfy)
    assert (found.family, found.folder, found.place) == ("taesd", vae_approx, "ComfyUI")
    explicit = tmp_path / "mine"
    write_pair(explicit, "taef1", 16)
    assert find_weights(explicit, environ=env, pack_root=comfy).folder == explicit
    from_env = find_weights(environ={**env, "LATENT_PAINTER_TAESD": str(explicit)}, pack_root=comfy)
    assert (from_env.family, from_env.place) == ("taef1", "LATENT_PAINTER_TAESD")
    # a flag beats the environment variable
    assert find_weights(beside, environ={**env, "LATENT_PAINTER_TAESD": str(explicit)}, pack_root=comfy).folder == beside


def test_an_explicit_folder_without_weights_is_an_error_not_a_fallback(tmp_path, comfy):
    write_pair(comfy.parent / "shared" / "data" / "taesd", "taef2", 32)
    wrong = tmp_path / "typo"
    with pytest.raises(WeightsNotFound, match=rf"--taesd {wrong} \(no such folder\)") as error:
        find_weights(wrong, environ=no_env(tmp_path), pack_root=comfy)
    assert "shared" not in str(error.value)
    with pytest.raises(WeightsNotFound, match=rf"LATENT_PAINTER_TAESD {wrong}"):
        find_or_download(environ=no_env(tmp_path, LATENT_PAINTER_TAESD=str(wrong)), pack_root=comfy,
                         base_url="http://127.0.0.1:1/")


def test_vae_approx_families_and_the_parts_asked_for(tmp_path, comfy):
    env = no_env(tmp_path)
    vae_approx = comfy.parents[1] / "models" / "vae_approx"
    # ComfyUI's README has users download decoders only: enough for decoding, not for the demo
    write_pair(vae_approx, "taef2", 32, parts=("decoder",))
    write_pair(vae_approx, "taesd3", 16)
    pair = find_weights(environ=env, pack_root=comfy)
    assert pair.family == "taesd3" and pair.encoder is not None
    decoder = find_weights(parts=("decoder",), environ=env, pack_root=comfy)
    assert decoder.family == "taef2" and decoder.encoder is None
    with pytest.raises(WeightsNotFound, match=r"taef2_encoder\.pth \+ taef2_decoder\.pth in one of"):
        find_weights(families=("taef2",), environ=env, pack_root=comfy)
    # every family loads with its own channel count
    for family, channels in (("taesd", 4), ("taef1", 16)):
        write_pair(tmp_path / family, family, channels)
        model = find_weights(tmp_path / family, environ=env, pack_root=comfy).load()
        assert (model.name, model.latent_channels) == (family, channels)


def test_vae_approx_only_when_the_pack_sits_in_custom_nodes(tmp_path):
    elsewhere = tmp_path / "ComfyUI" / "my_nodes" / "latent_painter"
    elsewhere.mkdir(parents=True)
    write_pair(tmp_path / "ComfyUI" / "models" / "vae_approx", "taef2", 32)
    assert weights.comfyui_vae_approx(elsewhere) is None
    with pytest.raises(WeightsNotFound, match="not in ComfyUI/custom_nodes"):
        find_weights(environ=no_env(tmp_path), pack_root=elsewhere)
    # in custom_nodes but without models/vae_approx: passed over, not an error
    bare = tmp_path / "Bare" / "custom_nodes" / "latent_painter"
    bare.mkdir(parents=True)
    assert weights.comfyui_vae_approx(bare) is None


def test_the_message_is_one_line_naming_files_and_places(tmp_path, comfy):
    env = no_env(tmp_path)
    with pytest.raises(WeightsNotFound) as error:
        find_weights(families=("taef2",), environ=env, pack_root=comfy)
    message = str(error.value)
    assert "\n" not in message
    for needle in ("taef2_encoder.pth + taef2_decoder.pth", str(comfy.parents[1] / "models" / "vae_approx"),
                   str(comfy.parent / "shared" / "data" / "taesd"), str(weights.cache_folder(env)), "--taesd FOLDER"):
        assert needle in message


# --- the pinned download, from a local server ----------------------------------------------------


class Server:
    """http.server on 127.0.0.1 in a thread, serving a folder."""

    def __init__(self, folder: Path):
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.requests = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    started = []

    def start(folder: Path) -> Server:
        server = Server(folder)
        server.thread.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.httpd.shutdown()
        server.httpd.server_close()


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def pins_for(folder: Path, names) -> dict:
    return {name: (hashlib.sha256((folder / name).read_bytes()).hexdigest(), (folder / name).stat().st_size)
            for name in names}


def test_download_keeps_only_a_file_that_matches_its_pin(tmp_path, serve):
    files = tmp_path / "served"
    files.mkdir()
    (files / "good.bin").write_bytes(os.urandom(300_000))
    server = serve(files)
    (sha, size), = pins_for(files, ["good.bin"]).values()
    cache = tmp_path / "cache"
    reports = []
    got = weights.download(server.base + "good.bin", cache / "good.bin", sha, size,
                           progress=lambda done, total: reports.append((done, total)))
    assert got.read_bytes() == (files / "good.bin").read_bytes()
    assert reports[-1] == (size, size) and len(reports) > 1
    for wrong_sha, wrong_size, match in (("0" * 64, size, "pinned SHA-256"), (sha, size + 1, "sent 300000 bytes"),
                                         (sha, size - 1, "more than the expected")):
        with pytest.raises(ValueError, match=match):
            weights.download(server.base + "good.bin", cache / "bad.bin", wrong_sha, wrong_size)
    assert sorted(os.listdir(cache)) == ["good.bin"]  # no bad file, no temp file left


def test_the_pins_are_the_official_files_and_the_download_fills_the_cache(tmp_path, comfy, serve, taesd_folder):
    assert pins_for(taesd_folder, weights.DOWNLOADS) == weights.DOWNLOADS
    files = tmp_path / "served"
    files.mkdir()
    for name in weights.DOWNLOADS:
        shutil.copy(taesd_folder / name, files / name)
    server = serve(files)
    env = no_env(tmp_path)
    bars = []
    found = find_or_download(environ=env, pack_root=comfy, base_url=server.base,
                             progress=lambda name: bars.append(name) or (lambda done, total: None))
    assert (found.place, found.family, found.folder) == ("download", "taef2", weights.cache_folder(env))
    assert bars == list(weights.DOWNLOADS)
    assert found.load().latent_channels == 32
    # next time it is simply in the cache: the server is not asked again
    server.httpd.shutdown()
    assert find_or_download(environ=env, pack_root=comfy, base_url=server.base).place == "cache"


def test_a_tampered_download_is_refused_and_leaves_nothing(tmp_path, comfy, serve):
    files = tmp_path / "served"
    files.mkdir()
    for name, (_, size) in weights.DOWNLOADS.items():
        (files / name).write_bytes(b"\0" * size)  # the right length, the wrong bytes
    server = serve(files)
    env = no_env(tmp_path)
    with pytest.raises(WeightsNotFound, match="download failed: .*does not match its pinned SHA-256"):
        find_or_download(environ=env, pack_root=comfy, base_url=server.base)
    cache = weights.cache_folder(env)
    assert not cache.exists() or os.listdir(cache) == []


def test_server_down_gives_the_one_line_message(tmp_path, comfy):
    with pytest.raises(WeightsNotFound) as error:
        find_or_download(environ=no_env(tmp_path), pack_root=comfy, base_url=closed_port(), timeout=5)
    message = str(error.value)
    assert "\n" not in message and "download failed" in message and "taef2_encoder.pth" in message


# --- the demo on a machine that has nothing --------------------------------------------------------


def copy_of_the_pack(tmp_path: Path) -> Path:
    """The pack's code in a folder with nothing beside it (no ../shared), importable as latent_painter."""
    site = tmp_path / "bare"
    pack = site / "latent_painter"
    ignore = shutil.ignore_patterns("__pycache__", ".venv", ".git", "tests", "benchmarks", "workflows")
    shutil.copytree(PACK, pack, ignore=ignore)
    return site


def run_demo(site: Path, tmp_path: Path, *args: str, **env) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LATENT_PAINTER")}
    environ.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), **env)
    command = [sys.executable, "-c", "import sys; from latent_painter.painter.tools.demo import main; sys.exit(main())", *args]
    return subprocess.run(command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_demo_with_nothing_found_prints_one_line_and_fails(tmp_path):
    site = copy_of_the_pack(tmp_path)
    result = run_demo(site, tmp_path, "--out", "demo.webp", LATENT_PAINTER_TAESD_URL=closed_port())
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert lines[0].startswith("latent-painter-demo: no TAESD weights: put taef2_encoder.pth + taef2_decoder.pth")
    assert str(tmp_path / "bare" / "shared" / "data" / "taesd") in lines[0]
    assert "download failed" in lines[0]
    assert not (tmp_path / "demo.webp").exists()


def test_demo_with_a_damaged_weight_file_prints_one_line(tmp_path):
    site = copy_of_the_pack(tmp_path)
    folder = tmp_path / "weights"
    write_pair(folder, "taef2", 32)
    (folder / "taef2_decoder.pth").write_bytes(b"PK\x03\x04 not really a zip")
    result = run_demo(site, tmp_path, "--taesd", str(folder))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "taef2_decoder.pth" in result.stderr and "unreadable" in result.stderr


def test_demo_paints_in_the_latent_space_of_the_weights_it_finds(tmp_path, comfy, capsys):
    # a ComfyUI install with only the SD pair (4 channels, not the demo's usual 32): the demo paints there
    write_pair(comfy.parents[1] / "models" / "vae_approx", "taesd", 4)
    from PIL import Image

    from latent_painter.painter.tools import demo

    found = find_weights(environ=no_env(tmp_path), pack_root=comfy)
    out = tmp_path / "demo.webp"
    code = demo.main(["--taesd", str(found.folder), "--out", str(out), "--size", "64", "--steps", "4",
                      "--frames", "6", "--hold", "1"])
    assert code == 0
    assert "7 frames of 64x64" in capsys.readouterr().out
    with Image.open(out) as animation:
        assert animation.size == (64, 64)
