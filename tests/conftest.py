"""Fixtures shared by the tests (the host tests have their own in tests/host/)."""

import os
from pathlib import Path

import pytest
from nodes_support import Progress

from latent_painter.nodes import host

REPO_ROOT = Path(__file__).resolve().parents[1]
TAESD_FILES = ("taef2_encoder.pth", "taef2_decoder.pth")


def pytest_addoption(parser):
    parser.addoption("--taesd", default=None, help="folder with taef2_encoder.pth and taef2_decoder.pth")


def find_taesd_weights(option: str | None) -> tuple[Path | None, Path]:
    """Where the taef2 weights are: the --taesd option, else LATENT_PAINTER_TAESD, else
    ../shared/data/taesd beside the repo. Returns (the folder if it holds both files, else
    None; the folder looked in). The one place that knows where test weights live."""
    place = Path(option or os.environ.get("LATENT_PAINTER_TAESD") or REPO_ROOT.parent / "shared" / "data" / "taesd")
    found = all((place / name).is_file() for name in TAESD_FILES)
    return (place if found else None), place


@pytest.fixture(scope="session")
def taesd_folder(request) -> Path:
    """The folder of the real taef2 weights; skips (naming the files and places) when absent."""
    folder, looked = find_taesd_weights(request.config.getoption("--taesd"))
    if folder is None:
        pytest.skip(f"no TAESD weights: {' and '.join(TAESD_FILES)} not both in {looked} "
                    "(pass --taesd DIR or set LATENT_PAINTER_TAESD)")
    return folder


@pytest.fixture
def progress(monkeypatch):
    """host.progress replaced by a recorder (the one piece of the host a node test fakes)."""
    recorder = Progress()
    monkeypatch.setattr(host, "progress", recorder)
    return recorder

from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[1]


class _PackRootIsAPlainFolder:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if path == PACK_ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    config.pluginmanager.register(_PackRootIsAPlainFolder(), "pack-root-is-a-plain-folder")
