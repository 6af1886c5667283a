"""Finding the TAESD weights: one lookup for the demo, the tests, the benchmarks and the generators.

Places, in order (the first that holds a usable pair wins):

1. ``--taesd FOLDER`` or ``LATENT_PAINTER_TAESD=FOLDER``. When given, it is the only place looked
   in: a wrong explicit folder is an error to report, not a reason to quietly use other files.
2. ComfyUI's ``models/vae_approx`` when the pack sits in ``ComfyUI/custom_nodes/``; any 8x TAESD
   family there (``taef2``, ``taef1``, ``taesd3``, ``taesdxl``, ``taesd``), in that order.
3. ``../shared/data/taesd`` beside the pack (the project's development machines and CI).
4. A per-user cache, ``$XDG_CACHE_HOME/latent-painter/taesd`` (default ``~/.cache/...``).
5. For the demo only (:func:`find_or_download`): the taef2 pair downloaded from the TAESD
   project's repository into the cache, pinned by SHA-256.

Pure Python and torch; no ComfyUI import (the ComfyUI folder is found from the pack's location).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from .taesd import WEIGHT_SUFFIXES, TaesdError, TinyAutoencoder

PACK_ROOT = Path(__file__).resolve().parents[2]  # painter/tools/weights.py -> the pack
ENV_FOLDER = "LATENT_PAINTER_TAESD"
ENV_DOWNLOAD_BASE = "LATENT_PAINTER_TAESD_URL"
# The 8x families this pack decodes, in the order a ComfyUI folder is searched: the FLUX.2
# space first (the pack's reference space), then the newer 16-channel spaces, then SD.
FAMILIES = ("taef2", "taef1", "taesd3", "taesdxl", "taesd")
PARTS = ("encoder", "decoder")
# The official taef2 files, at the commit that added them (github.com/madebyollin/taesd, MIT).
DOWNLOAD_FAMILY = "taef2"
DOWNLOAD_BASE = "https://raw.githubusercontent.com/madebyollin/taesd/5cccb12dc72074a4be35680c3b108548a7c69978/"
DOWNLOADS = {
    "taef2_encoder.pth": ("10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6", 2_704_692),
    "taef2_decoder.pth": ("0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5", 2_704_756),
}
# Short: an offline machine should hear "not found" in seconds, not minutes.
DOWNLOAD_TIMEOUT_SECONDS = 15.0
CHUNK_BYTES = 1 << 16


class WeightsNotFound(TaesdError):
    """No usable TAESD pair in any place looked in; the one-line message names the files and the places."""


@dataclass(frozen=True)
class Place:
    """One folder the lookup considers, and why it does (or why it was passed over)."""

    label: str
    folder: Path | None
    note: str = ""

    def describe(self) -> str:
        where = f"{self.label} {self.folder}" if self.folder is not None else self.label
        return f"{where} ({self.note})" if self.note else where


@dataclass(frozen=True)
class Found:
    """A usable TAESD pair (or a lone part, when only one was asked for) and where it came from."""

    family: str
    folder: Path
    place: str
    encoder: Path | None
    decoder: Path | None

    def load(self, device="cpu") -> TinyAutoencoder:
        return TinyAutoencoder.from_files(self.encoder, self.decoder, device=device, name=self.family)


def cache_folder(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user cache the download fills (``$XDG_CACHE_HOME/latent-painter/taesd``)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "latent-painter" / "taesd"


def comfyui_vae_approx(pack_root: Path = PACK_ROOT) -> Path | None:
    """``ComfyUI/models/vae_approx`` when the pack is installed in ``ComfyUI/custom_nodes/``."""
    if pack_root.parent.name != "custom_nodes":
        return None
    folder = pack_root.parent.parent / "models" / "vae_approx"
    return folder if folder.is_dir() else None


def places(
    explicit: str | os.PathLike | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    pack_root: Path = PACK_ROOT,
) -> list[Place]:
    """The folders to look in, in order, with a note on those that do not exist or do not apply."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        return [Place("--taesd", Path(explicit))]
    if environ.get(ENV_FOLDER):
        return [Place(ENV_FOLDER, Path(environ[ENV_FOLDER]))]
    vae_approx = comfyui_vae_approx(pack_root)
    comfy = (
        Place("ComfyUI", vae_approx)
        if vae_approx is not None
        else Place("ComfyUI models/vae_approx", None, "the pack is not in ComfyUI/custom_nodes")
    )
    return [comfy, Place("beside the pack", pack_root.parent / "shared" / "data" / "taesd"),
            Place("cache", cache_folder(environ))]


def _part_file(folder: Path, family: str, part: str) -> Path | None:
    for suffix in WEIGHT_SUFFIXES:
        candidate = folder / f"{family}_{part}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _search(folder: Path, families, parts) -> Found | None:
    for family in families:
        files = {part: _part_file(folder, family, part) for part in parts}
        if all(files.values()):
            return Found(family, folder, "", files.get("encoder"), files.get("decoder"))
    return None


def wanted_files(families=FAMILIES, parts=PARTS) -> str:
    """``taef2_encoder.pth + taef2_decoder.pth`` (or, for several families, the first and the others' names)."""
    pair = " + ".join(f"{families[0]}_{part}.pth" for part in parts)
    return pair if len(families) == 1 else f"{pair} (or another family's pair: {', '.join(families[1:])})"


def find_weights(
    explicit: str | os.PathLike | None = None,
    *,
    families: tuple[str, ...] = FAMILIES,
    parts: tuple[str, ...] = PARTS,
    environ: Mapping[str, str] | None = None,
    pack_root: Path = PACK_ROOT,
) -> Found:
    """The first place holding ``parts`` of one of ``families``; :class:`WeightsNotFound` otherwise."""
    looked = places(explicit, environ=environ, pack_root=pack_root)
    for place in looked:
        if place.folder is not None and place.folder.is_dir():
            found = _search(place.folder, families, parts)
            if found is not None:
                return Found(found.family, found.folder, place.label, found.encoder, found.decoder)
    raise WeightsNotFound(not_found_message(looked, families, parts))


def find_or_exit(explicit: str | os.PathLike | None = None, *, program: str, **lookup) -> Found:
    """:func:`find_weights` for command-line tools: the one-line message and a non-zero exit, no traceback."""
    try:
        return find_weights(explicit, **lookup)
    except WeightsNotFound as error:
        raise SystemExit(f"{program}: {error}") from None


def not_found_message(looked: list[Place], families=FAMILIES, parts=PARTS, why: str = "") -> str:
    described = "; ".join(
        place.describe() + ("" if place.folder is None or place.folder.is_dir() or place.note else " (no such folder)")
        for place in looked
    )
    hint = "" if looked and looked[0].label in ("--taesd", ENV_FOLDER) else "; or pass --taesd FOLDER"
    tail = f" {why}." if why else ""
    return (
        f"no TAESD weights: put {wanted_files(families, parts)} in one of: {described}{hint} "
        f"(the files are at github.com/madebyollin/taesd).{tail}"
    )


def find_or_download(
    explicit: str | os.PathLike | None = None,
    *,
    families: tuple[str, ...] = FAMILIES,
    environ: Mapping[str, str] | None = None,
    pack_root: Path = PACK_ROOT,
    base_url: str | None = None,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
    progress: Callable[[str], Callable[[int, int], None]] | None = None,
) -> Found:
    """:func:`find_weights`, then (when no folder was given explicitly) the taef2 download into the cache.

    ``base_url`` (or ``$LATENT_PAINTER_TAESD_URL``) replaces the official location, for tests and
    mirrors; the SHA-256 pins hold whatever the source. ``progress(label)`` returns a ``(done, total)``
    reporter for one file.
    """
    environ = os.environ if environ is None else environ
    try:
        return find_weights(explicit, families=families, environ=environ, pack_root=pack_root)
    except WeightsNotFound:
        if explicit is not None or environ.get(ENV_FOLDER) or DOWNLOAD_FAMILY not in families:
            raise
    looked = places(None, environ=environ, pack_root=pack_root)
    cache = cache_folder(environ)
    base = base_url or environ.get(ENV_DOWNLOAD_BASE) or DOWNLOAD_BASE
    try:
        for name in DOWNLOADS:
            if not (cache / name).is_file():
                download(base + name, cache / name, *DOWNLOADS[name], timeout=timeout,
                         progress=None if progress is None else progress(name))
    except (OSError, ValueError) as error:  # URLError and timeouts are OSErrors; a bad hash is a ValueError
        raise WeightsNotFound(not_found_message(looked, families, PARTS, why=f"The download failed: {_reason(error)}")) from None
    found = _search(cache, (DOWNLOAD_FAMILY,), PARTS)
    return Found(found.family, found.folder, "download", found.encoder, found.decoder)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    return " ".join(str(error).split()) or type(error).__name__


def download(url: str, target: Path, sha256: str, size: int, *, timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch ``url`` into ``target`` atomically: a temp file beside it, renamed only once its
    length and SHA-256 match. A short, long, wrong or interrupted download leaves no file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".part", dir=target.parent)
    try:
        digest = hashlib.sha256()
        received = 0
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                received += len(chunk)
                if received > size:  # a server that sends more than the file is not sending the file
                    raise ValueError(f"{url} sent more than the expected {size} bytes")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(received, size)
        if received != size:
            raise ValueError(f"{url} sent {received} bytes, expected {size}")
        if digest.hexdigest() != sha256:
            raise ValueError(f"{url} does not match its pinned SHA-256 (got {digest.hexdigest()[:16]}...)")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


__all__ = [
    "DOWNLOADS",
    "FAMILIES",
    "Found",
    "WeightsNotFound",
    "cache_folder",
    "download",
    "find_or_download",
    "find_or_exit",
    "find_weights",
    "places",
]
