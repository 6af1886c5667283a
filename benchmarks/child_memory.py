"""Peak-memory measurement in a child process, shared by the memory benchmarks.

A case runs in a fresh interpreter (``spawn_case``) so nothing the parent loaded counts. The
child warms up, calls ``reset_peak`` (the kernel's peak RSS := current RSS), runs the case, reads
``status_kib("VmHWM")`` and prints its result with ``emit_result``. Children run with
``MALLOC_MMAP_THRESHOLD_=65536`` so freed large buffers go back to the system and one case's
garbage never counts as the next step's peak. Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

MMAP_THRESHOLD = "65536"
RESULT_PREFIX = "RESULT "


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"/proc/self/status has no {field}; this benchmark needs Linux")
    return int(match.group(1))


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS := current RSS


def emit_result(result: dict) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def spawn_case(script: str, name: str, arguments: list[str]) -> dict:
    """Run ``script --case name *arguments`` in a fresh interpreter and return its result."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=MMAP_THRESHOLD)
    res = subprocess.run([sys.executable, script, "--case", name, *arguments], capture_output=True, text=True, env=env)
    lines = [line for line in res.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if res.returncode != 0 or not lines:
        raise SystemExit(f"case {name} failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])
