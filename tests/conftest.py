"""Fixtures shared by the tests (the host tests have their own in tests/host/)."""

import os
from pathlib import Path

import pytest
from hypothesis import settings
from nodes_support import Progress

from latent_painter.nodes import host
from latent_painter.painter.tools.weights import WeightsNotFound, find_weights

REPO_ROOT = Path(__file__).resolve().parents[1]

# The README's test command draws the same property-test examples on every run and machine, so a
# landing never hangs on which random examples a run happened to draw (CI runs that command as
# written). LATENT_PAINTER_EXPLORE=1 draws new ones (and replays what failed before): do that after
# changing what the property tests cover.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("LATENT_PAINTER_EXPLORE") else "fixed")


def pytest_addoption(parser):
    parser.addoption("--taesd", default=None, help="folder with taef2_encoder.pth and taef2_decoder.pth")


class _PackRootIsAPlainFolder:
    """The pack root has an __init__.py (ComfyUI imports it), so pytest would collect it as a test
    package and import it under the clone's folder name: a clone named ``latent-painter`` failed
    every test at setup. Collected as a plain folder, it is never imported."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if path == REPO_ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    # Registered as a plugin, not a conftest hook: the root's collector is made before any
    # conftest below the root is consulted.
    config.pluginmanager.register(_PackRootIsAPlainFolder(), "pack-root-is-a-plain-folder")


@pytest.fixture(scope="session")
def taesd_folder(request) -> Path:
    """The folder of the real taef2 weights, found by the pack's one lookup (painter/tools/weights.py:
    --taesd, LATENT_PAINTER_TAESD, ComfyUI's vae_approx, ../shared/data/taesd, the user cache;
    never a download); skips with the files and the places looked in when absent."""
    try:
        return find_weights(request.config.getoption("--taesd"), families=("taef2",)).folder
    except WeightsNotFound as error:
        pytest.skip(str(error))


@pytest.fixture
def progress(monkeypatch):
    """host.progress replaced by a recorder (the one piece of the host a node test fakes)."""
    recorder = Progress()
    monkeypatch.setattr(host, "progress", recorder)
    return recorder


_PARTS: dict[str, dict] = {}  # "tests/host" / "other tests" -> seconds and each test's outcome


def pytest_runtest_logreport(report):
    part = _PARTS.setdefault("tests/host" if "tests/host/" in report.nodeid.replace("\\", "/") else "other tests",
                             {"seconds": 0.0, "outcomes": {}})
    part["seconds"] += report.duration
    # a test's outcome is its call's, or its setup's/teardown's where that did not pass
    if report.when == "call" or report.outcome != "passed":
        part["outcomes"].setdefault(report.nodeid, report.outcome)


def pytest_terminal_summary(terminalreporter):
    """How long each part of the suite took and how it ended (README "What CI runs" quotes these
    lines; CI's host part must say 0 skipped)."""
    for name, part in sorted(_PARTS.items()):
        outcomes = list(part["outcomes"].values())
        counts = ", ".join(f"{outcomes.count(kind)} {kind}" for kind in ("passed", "skipped", "failed"))
        terminalreporter.write_line(f"{name}: {len(outcomes)} tests ({counts}), {part['seconds']:.0f} s")
