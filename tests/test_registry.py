"""What the Comfy Registry reads from pyproject.toml, the icon it shows, and what .comfyignore keeps
out of the published archive (docs.comfy.org/registry/specifications)."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((PACK / "pyproject.toml").read_text())
# The registry's limits for an icon; ours is kept small so the repository stays light.
ICON_MAX_SIDES = (800, 400)
ICON_MAX_BYTES = 64 * 1024


def test_project_fields_follow_the_registry_rules():
    project = PYPROJECT["project"]
    name = project["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert project["urls"]["Repository"].startswith("https://")
    assert set(project["license"]) in ({"text"}, {"file"})
    assert project["description"]


def test_tool_comfy_fields():
    comfy = PYPROJECT["tool"]["comfy"]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", comfy["PublisherId"])
    assert comfy["DisplayName"] == "Latent Painter"
    assert re.fullmatch(r">=\d+\.\d+\.\d+", comfy["requires-comfyui"])
    assert "includes" not in comfy or all((PACK / folder).is_dir() for folder in comfy["includes"])


def test_the_icon_is_in_the_repository_and_a_small_image():
    from PIL import Image

    url = PYPROJECT["tool"]["comfy"]["Icon"]
    repository = PYPROJECT["project"]["urls"]["Repository"]
    owner_and_name = repository.removeprefix("https://github.com/")
    prefix = f"https://raw.githubusercontent.com/{owner_and_name}/main/"
    assert url.startswith(prefix), f"the icon must be served from this repository: {url}"
    path = PACK / url.removeprefix(prefix)
    assert path.is_file(), f"{path} is not in the repository"
    assert path.stat().st_size <= ICON_MAX_BYTES
    with Image.open(path) as icon:
        icon.verify()
    with Image.open(path) as icon:
        assert icon.format in ("PNG", "JPEG") and icon.mode == "RGB"
        width, height = icon.size
        assert 64 <= min(width, height) and width <= ICON_MAX_SIDES[0] and height <= ICON_MAX_SIDES[1]
        # a painting, not a blank tile: the pixels vary
        low, high = zip(*icon.getextrema())
        assert max(high) - min(low) > 100


def ignore_patterns() -> list[str]:
    lines = (PACK / ".comfyignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """gitignore-style matching, enough for the patterns used here: 'folder/' and globs from the root."""
    for pattern in patterns:
        if pattern.endswith("/"):
            if relative.startswith(pattern) or f"/{pattern}" in f"/{relative}":
                return True
        elif fnmatch.fnmatchcase(relative, pattern.lstrip("/")):
            return True
    return False


def pack_files() -> list[str]:
    files = []
    for folder, subfolders, names in os.walk(PACK):
        subfolders[:] = [d for d in subfolders
                         if d not in ("__pycache__", ".git", ".venv", ".hypothesis", ".pytest_cache")
                         and not d.endswith(".egg-info")]
        files += [os.path.relpath(os.path.join(folder, name), PACK).replace(os.sep, "/") for name in names]
    return files


def test_comfyignore_keeps_development_files_out_and_the_pack_in():
    patterns = ignore_patterns()
    files = pack_files()
    development = [f for f in files if f.startswith(("tests/", "benchmarks/", ".ci/"))
                   or re.fullmatch(r"workflows/make_\w+\.py", f)]
    assert {f.split("/")[0] for f in development} >= {"tests", "benchmarks", ".ci", "workflows"}
    assert [f for f in development if not ignored(f, patterns)] == []
    needed = [f for f in files if f.endswith(".py") and f.startswith(("nodes/", "painter/"))]
    needed += ["__init__.py", "pyproject.toml", "README.md"] + [f for f in files if re.fullmatch(r"workflows/[^/]+\.json", f)]
    assert len(needed) > 20
    assert [f for f in needed if ignored(f, patterns)] == []


@pytest.mark.parametrize("relative, expected", [("tests/x.py", True), ("nodes/tests.py", False),
                                                ("workflows/make_icon.py", True), ("workflows/a.json", False)])
def test_the_matcher_itself(relative, expected):
    assert ignored(relative, ignore_patterns()) is expected
