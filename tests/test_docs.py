"""Every node has a help page in web/docs/ that the frontend's node help panel can serve (no ComfyUI needed).

The pages' generated parts and the README's node table come from the node declarations through
``web/make_docs.py`` (one source: the DESCRIPTION and tooltips in nodes/); these tests fail when a
declaration changed and the script was not run, when a node has no page, when a hand-written page
misses an input, or when a picture is missing or large. ``tests/host/test_frontend.py`` proves the
pages are served and shown by the real frontend.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from latent_painter.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "web" / "docs"
MAX_PICTURE_BYTES = 60_000
sys.path.insert(0, str(ROOT / "web"))

import make_docs  # noqa: E402


def _page(node_id: str) -> str:
    path = DOCS / f"{node_id}.md"
    assert path.is_file(), f"{node_id} has no help page {path.relative_to(ROOT)}; run python web/make_docs.py"
    return path.read_text(encoding="utf-8")


def test_the_pack_registers_its_web_folder():
    tree = ast.parse((ROOT / "__init__.py").read_text(encoding="utf-8"))
    values = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    assert values.get("WEB_DIRECTORY") == "./web", values
    assert (ROOT / values["WEB_DIRECTORY"] / "docs").is_dir()
    import latent_painter

    assert latent_painter.WEB_DIRECTORY == "./web"
    assert "web" not in re.findall(r"(?m)^\s*web\s*=", (ROOT / "pyproject.toml").read_text()), \
        "[tool.comfy] web registers the folder under the project name; use WEB_DIRECTORY"


def test_the_published_archive_keeps_the_pages():
    ignored = [line.strip() for line in (ROOT / ".comfyignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for pattern in ignored:
        assert not re.fullmatch(r"/?web/?(docs/?)?(\*\*?)?", pattern), f".comfyignore drops the help pages: {pattern}"
    assert "web/make_*.py" in ignored, "the page generator is a developer tool: keep it out of the archive"


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_every_node_has_a_page_with_its_heading(node_id):
    text = _page(node_id)
    assert text.splitlines()[0] == f"# {NODE_DISPLAY_NAME_MAPPINGS[node_id]}", text.splitlines()[0]


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_page_says_what_the_declaration_says(node_id):
    """A generated part equals what the script writes now; a hand-written page names every input."""
    text = _page(node_id)
    fresh = make_docs.page_text(node_id, text, NODE_DISPLAY_NAME_MAPPINGS[node_id], make_docs.generated_part(node_id))
    assert text == fresh, f"web/docs/{node_id}.md is out of date with nodes/; run python web/make_docs.py"
    types = make_docs._declarations()[node_id][1]
    inputs = [name for section in ("required", "optional") for name in types.get(section, {})]
    missing = [name for name in inputs if f"`{name}`" not in text]
    assert not missing, f"web/docs/{node_id}.md does not describe the inputs {missing}"


def test_no_page_for_a_node_that_does_not_exist():
    orphans = sorted(p.stem for p in DOCS.glob("*.md") if p.stem not in NODE_CLASS_MAPPINGS)
    assert not orphans, f"help pages of unknown node ids: {orphans}"


def test_pictures_exist_and_stay_small():
    linked = set()
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            assert not target.startswith(("http:", "https:", "/")), f"{page.name}: {target} must be relative"
            path = (DOCS / target).resolve()
            assert path.is_file(), f"{page.name} shows {target}, which does not exist"
            size = path.stat().st_size
            assert size < MAX_PICTURE_BYTES, f"{target} is {size} bytes; keep pictures under {MAX_PICTURE_BYTES}"
            with Image.open(path) as image:
                assert image.format == "JPEG", target
            linked.add(path)
    unused = sorted(p.name for p in (DOCS / "images").glob("*") if p.resolve() not in linked) \
        if (DOCS / "images").is_dir() else []
    assert not unused, f"pictures no page shows: {unused}"


def test_readme_node_table_links_every_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text == make_docs.readme_text(text), "README.md's node table is out of date; run python web/make_docs.py"
    for node_id in NODE_CLASS_MAPPINGS:
        assert f"](web/docs/{node_id}.md)" in text, node_id


def test_generator_keeps_hand_written_parts_and_pages_without_markers():
    part = make_docs.generated_part("LatentPainterCanvas")
    new = make_docs.page_text("LatentPainterCanvas", None, "Canvas", part)
    assert new.startswith("# Canvas\n") and part in new
    edited = new.replace(part, "stale text\n") + "\n## By hand\n\nkept.\n"
    refreshed = make_docs.page_text("LatentPainterCanvas", edited, "Canvas", part)
    assert part in refreshed and "stale text" not in refreshed and refreshed.endswith("## By hand\n\nkept.\n")
    by_hand = "# Canvas\n\nWritten by hand, `vae`, `plan`, `kind`, `colour`.\n"
    assert make_docs.page_text("LatentPainterCanvas", by_hand, "Canvas", part) == by_hand
