"""Incremental decoding with ComfyUI's own VAEs (skipped without COMFYUI_PATH).

Runs ``benchmarks/bench_host_incremental.py --quick`` with the host's Python: ComfyUI 0.8.0 builds
SD1.5's KL-VAE (``comfy.sd.VAE``) and core TAESD (core ``VAELoader`` 'taesd' from random
vae_approx files), ``nodes.host.decoder_view`` wraps them as the nodes do, and every frame of
the incremental decode is compared with that frame's own full decode. What must hold:

- core TAESD is not split (the staged path missed the bound on it between checks, and was
  slower than full decodes): ``decode: incremental`` decodes every frame in full;
- the KL-VAE is not split; ``decode: incremental`` as the nodes run it decodes every frame in full
  (identical frames, no crops).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
from comfy_host import PROJECT_ROOT, comfy_path_or_skip, comfy_python

pytestmark = pytest.mark.slow

SCRIPT = PROJECT_ROOT / "benchmarks" / "bench_host_incremental.py"


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> dict[tuple[str, str], dict]:
    path = comfy_path_or_skip()
    out = tmp_path_factory.mktemp("incremental") / "rows.json"
    env = dict(os.environ, COMFYUI_PATH=str(path))
    res = subprocess.run([comfy_python(path), str(SCRIPT), "--quick", "--json", str(out)], capture_output=True,
                         text=True, env=env, timeout=3600)
    assert res.returncode == 0, f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    print("\n" + "\n".join(line for line in res.stdout.splitlines() if line.startswith(("|", "-"))))
    return {(r["vae"], r["mode"]): r for r in json.loads(out.read_text())}


def test_core_taesd_decodes_every_frame_in_full(rows):
    r = rows[("core TAESD", "incremental")]
    assert not r["staged"] and r["crop_decodes"] == 0, r
    assert r["frames_below_bound"] == 0 and math.isinf(r["min_psnr"]) and r["last_identical"], r
    assert r["full_decodes"] == r["frames"], r


def test_kl_vae_incremental_decodes_every_frame_in_full(rows):
    r = rows[("SD1.5 KL-VAE", "incremental")]
    assert not r["staged"] and r["crop_decodes"] == 0 and "not known as layers" in r["fallback"], r
    assert math.isinf(r["min_psnr"]) and r["last_identical"], r
    assert r["full_decodes"] == r["frames"], r
