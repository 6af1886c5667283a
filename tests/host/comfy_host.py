"""The one seam between the pack's host tests and a real ComfyUI checkout.

Everything that knows how ComfyUI is started, where its folders are and how its HTTP API answers
lives here; the tests only call ``ComfyHost`` methods. Standard library only (the project venv
needs no ``requests``), and nothing of ComfyUI is imported into the test process: the host runs
as a subprocess with its own Python.

Environment:

- ``COMFYUI_PATH``: a ComfyUI checkout (tested with 0.8.0). Unset: every host test is skipped.
- ``COMFYUI_PYTHON``: the Python that runs it; default ``$COMFYUI_PATH/.venv/bin/python`` if
  present, else ``sys.executable``.
- ``LATENT_PAINTER_CKPT_CACHE`` (optional): a folder that keeps the generated random test
  checkpoints between sessions (they are ~1.6 GB each and take ~10-20 s to write). Unset: they
  are written to the session's scratch dir and deleted with it. The tiny random diffusion models
  (SD3, Wan 2.1: other latent formats, a few MB) and VAEs are always written to the scratch dir.
- ``COMFYUI_START_TIMEOUT`` / ``COMFYUI_PROMPT_TIMEOUT`` (optional, seconds): default 180 / 900.

The pack is loaded the way a user's install would load it, but without touching the checkout:
a scratch ``custom_nodes/latent_painter`` symlink to the project root, registered through
``--extra-model-paths-config`` (``custom_nodes:``, ``checkpoints:``, ``diffusion_models:`` and ``vae:``
keys). Beside it, ``latent_painter_test_nodes.py`` (test-only nodes: tiny models that no weights file
can give, text conditioning of any width) is linked in the same way; it is never part of the pack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import struct
import threading
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from pathlib import Path

PACK_DIR_NAME = "latent_painter"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # tests/host/comfy_host.py -> project root
MAKE_CHECKPOINT = Path(__file__).resolve().with_name("make_checkpoint.py")
TEST_NODES = Path(__file__).resolve().with_name("latent_painter_test_nodes.py")  # test-only nodes, linked in


class HostError(RuntimeError):
    """The host refused or failed a request; the message carries the server's own error text."""


def comfy_path() -> Path | None:
    p = os.environ.get("COMFYUI_PATH")
    return Path(p).resolve() if p else None


def comfy_path_or_skip() -> Path:
    import pytest

    p = comfy_path()
    if p is None:
        pytest.skip("host tests need COMFYUI_PATH (a ComfyUI checkout to run the pack in)")
    if not (p / "main.py").is_file():
        pytest.fail(f"COMFYUI_PATH={p} has no main.py: point it at a ComfyUI checkout")
    return p


def comfy_python(path: Path) -> str:
    explicit = os.environ.get("COMFYUI_PYTHON")
    if explicit:
        return explicit
    venv = path / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def checkpoint_name(seed: int, family: str = "sd15") -> str:
    return f"latent_painter_test_{family}_seed{seed}.safetensors"


class ComfyHost:
    """A ComfyUI server subprocess in a scratch dir, with the pack linked in."""

    def __init__(self, path: Path, scratch: Path, python: str | None = None):
        self.path = Path(path)
        self.python = python or comfy_python(self.path)
        self.scratch = Path(scratch)
        self.custom_nodes = self.scratch / "custom_nodes"
        cache = os.environ.get("LATENT_PAINTER_CKPT_CACHE")
        self.checkpoints = Path(cache).resolve() if cache else self.scratch / "models" / "checkpoints"
        self.diffusion_models = self.scratch / "models" / "diffusion_models"
        self.vaes = self.scratch / "models" / "vae"
        self.text_encoders = self.scratch / "models" / "text_encoders"
        self.vae_approx = self.scratch / "models" / "vae_approx"  # core VAELoader's taesd/taesdxl/taesd3/taef1
        self.input_dir = self.scratch / "input"
        self.output_dir = self.scratch / "output"
        self.temp_dir = self.scratch / "temp"
        self.user_dir = self.scratch / "user"
        self.yaml = self.scratch / "extra_model_paths.yaml"
        self.log_path = self.scratch / "comfyui.log"
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.client_id = uuid.uuid4().hex
        self._layout()

    # ---------------------------------------------------------------- setup / lifecycle
    def _layout(self) -> None:
        for d in (self.custom_nodes, self.checkpoints, self.diffusion_models, self.vaes, self.text_encoders,
                  self.vae_approx, self.input_dir,
                  self.output_dir, self.temp_dir, self.user_dir):
            d.mkdir(parents=True, exist_ok=True)
        link = self.custom_nodes / PACK_DIR_NAME
        if not link.is_symlink():
            link.symlink_to(PROJECT_ROOT, target_is_directory=True)
        test_nodes = self.custom_nodes / TEST_NODES.name  # tiny models and conditioning for the family tests
        if not test_nodes.is_symlink():
            test_nodes.symlink_to(TEST_NODES)
        # Absolute paths: ComfyUI resolves relative ones against the yaml's own folder.
        self.yaml.write_text(
            "latent_painter_tests:\n"
            f"    custom_nodes: {self.custom_nodes}\n"
            f"    checkpoints: {self.checkpoints}\n"
            f"    diffusion_models: {self.diffusion_models}\n"
            f"    vae: {self.vaes}\n"
            f"    text_encoders: {self.text_encoders}\n"
            f"    vae_approx: {self.vae_approx}\n",
            encoding="utf-8",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> "ComfyHost":
        timeout = timeout or float(os.environ.get("COMFYUI_START_TIMEOUT", 180))
        self.port = free_port()
        cmd = [
            self.python, "main.py", "--cpu",
            "--listen", "127.0.0.1", "--port", str(self.port),
            "--output-directory", str(self.output_dir),
            "--input-directory", str(self.input_dir),
            "--temp-directory", str(self.temp_dir),
            "--user-directory", str(self.user_dir),
            "--database-url", f"sqlite:///{self.user_dir / 'comfyui.db'}",
            "--extra-model-paths-config", str(self.yaml),
            "--disable-auto-launch",
        ]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop("PYTHONPATH", None)  # the project's paths must not leak into the host
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.path, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HostError(f"ComfyUI exited with code {self.proc.returncode} while starting:\n"
                                + self.log_tail())
            try:
                self.get_json("/system_stats", timeout=5)
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HostError(f"ComfyUI did not answer /system_stats within {timeout:.0f} s:\n"
                                + self.log_tail())
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
                self.proc.wait(timeout=20)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ComfyHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- checkpoints
    def _build(self, target: Path, seed: int, family: str, timeout: float, also=()) -> None:
        """Write ``target`` (and the ``(path, family)`` pairs of ``also``, same seed, same process)."""
        t0 = time.monotonic()
        extra = ["--also", *(f"{path}:{fam}" for path, fam in also)] if also else []
        res = subprocess.run(
            [self.python, str(MAKE_CHECKPOINT), str(target), str(seed), "--family", family, *extra],
            cwd=self.path, capture_output=True, text=True, timeout=timeout,
            env={**os.environ, "COMFYUI_PATH": str(self.path)},
        )
        if res.returncode != 0 or not target.exists() or not all(Path(path).exists() for path, _ in also):
            raise HostError(f"make_checkpoint.py failed ({family}, seed {seed}):\n{res.stdout}\n{res.stderr}")
        self.checkpoint_build_seconds = time.monotonic() - t0

    def ensure_checkpoint(self, seed: int, timeout: float = 900) -> str:
        """Write (once) a random SD1.5-layout checkpoint; return its ckpt_name for the loader."""
        name = checkpoint_name(seed)
        target = self.checkpoints / name
        if not target.exists():
            self._build(target, seed, "sd15", timeout)
        return name

    def ensure_diffusion_model(self, seed: int, family: str = "sd3", timeout: float = 300) -> str:
        """Write (once) a tiny random diffusion model (``make_checkpoint.py --family``) into the
        ``diffusion_models`` folder; return its unet_name for the core UNETLoader."""
        name = checkpoint_name(seed, family)
        target = self.diffusion_models / name
        if not target.exists():
            self._build(target, seed, family, timeout)
        return name

    def ensure_vaes(self, seed: int, families, timeout: float = 300) -> dict[str, str]:
        """Write (once, in one process) random VAEs (``make_checkpoint.py --family``: ``kl_vae16``,
        ``flux2_vae``, ``wan21_vae``, ``wan21_vae_rgba``) into the ``vae`` folder; return each family's
        vae_name for core VAELoader."""
        names = {family: checkpoint_name(seed, family) for family in families}
        missing = [(self.vaes / names[family], family) for family in families
                   if not (self.vaes / names[family]).exists()]
        if missing:
            (target, family), *also = missing
            self._build(target, seed, family, timeout, also)
        return names

    def ensure_taesd_vae(self, taesd_folder: Path, name: str = "taef2_as_core_taesd.safetensors") -> str:
        """Write (once) the real taef2 pair as one ``models/vae`` file with ``taesd_encoder.`` /
        ``taesd_decoder.`` keys, which core VAELoader loads as a 32-channel TAESD; return its vae_name."""
        target = self.vaes / name
        if not target.exists():
            res = subprocess.run([self.python, "-c", "import sys; from make_checkpoint import taesd_state_dict; "
                                  "taesd_state_dict(sys.argv[1], sys.argv[2])", str(taesd_folder), str(target)],
                                 cwd=MAKE_CHECKPOINT.parent, capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "COMFYUI_PATH": str(self.path)})
            if res.returncode != 0 or not target.exists():
                raise HostError(f"writing the TAESD vae file failed:\n{res.stdout}\n{res.stderr}")
        return name

    # ---------------------------------------------------------------- HTTP
    def _request(self, method: str, route: str, body=None, timeout: float = 60):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + route, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode("utf-8") or "null")

    def get_json(self, route: str, timeout: float = 60):
        return self._request("GET", route, timeout=timeout)

    def post_json(self, route: str, body, timeout: float = 60):
        return self._request("POST", route, body, timeout=timeout)

    def object_info(self, node_class: str | None = None) -> dict:
        if node_class is None:
            return self.get_json("/object_info", timeout=120)
        return self.get_json("/object_info/" + urllib.parse.quote(node_class))[node_class]

    def submit(self, prompt: dict) -> str:
        """POST /prompt; returns the prompt id or raises HostError with the validation errors."""
        try:
            ans = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                j = json.loads(text)
                text = json.dumps({"error": j.get("error"), "node_errors": j.get("node_errors")}, indent=1)
            except ValueError:
                pass
            raise HostError(f"/prompt refused the prompt (HTTP {e.code}):\n{text}") from None
        if ans.get("node_errors"):
            raise HostError("/prompt reported node errors:\n" + json.dumps(ans["node_errors"], indent=1))
        return ans["prompt_id"]

    def finished(self, prompt_id: str, timeout: float | None = None) -> dict:
        """Poll /history/<id> until the prompt has ended, however it ended (success, error or
        interrupt); return its history entry (see :func:`outcome`)."""
        timeout = timeout or float(os.environ.get("COMFYUI_PROMPT_TIMEOUT", 900))
        deadline = time.monotonic() + timeout
        while True:
            hist = self.get_json("/history/" + prompt_id)
            if hist and prompt_id in hist:
                return hist[prompt_id]
            if self.proc is not None and self.proc.poll() is not None:
                raise HostError(f"ComfyUI died (exit {self.proc.returncode}) while running the prompt:\n"
                                + self.log_tail())
            if time.monotonic() > deadline:
                raise HostError(f"prompt {prompt_id} not done after {timeout:.0f} s:\n" + self.log_tail())
            time.sleep(0.1)

    def wait(self, prompt_id: str, timeout: float | None = None) -> dict:
        """Poll /history/<id> until the prompt is done; return its history entry, or raise
        HostError with the server's error if it failed or was interrupted."""
        entry = self.finished(prompt_id, timeout)
        if outcome(entry)[0] != "success":
            raise HostError("prompt failed:\n" + self.describe_failure(entry))
        return entry

    def queue(self, prompt: dict, timeout: float | None = None) -> dict:
        """Run an API-format prompt to completion; return its /history entry."""
        return self.wait(self.submit(prompt), timeout=timeout)

    @staticmethod
    def describe_failure(entry: dict) -> str:
        lines = []
        for event, data in (entry.get("status") or {}).get("messages", []):
            if event == "execution_error":
                lines.append(f"node {data.get('node_id')} ({data.get('node_type')}): "
                             f"{data.get('exception_type')}: {data.get('exception_message')}")
                lines.append("".join(data.get("traceback") or []))
            elif event == "execution_interrupted":
                lines.append(f"interrupted at node {data.get('node_id')} ({data.get('node_type')})")
        return "\n".join(lines) or json.dumps(entry.get("status"), indent=1)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt, ComfyUI's Cancel: the running node stops at its next interruption check
        (a progress report, or the start of the next node). With ``prompt_id`` only that prompt is
        interrupted, and only while it runs (a late request does not leak into the next prompt)."""
        self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})

    def messages(self) -> "Messages":
        """A live reader of the server's websocket messages for this client (progress, executing,
        execution_* events of the prompts :meth:`submit` queues); close it when done."""
        return Messages(self.port, self.client_id)

    def idle(self) -> bool:
        """True when nothing is running or pending (GET /queue)."""
        queue = self.get_json("/queue")
        return not queue.get("queue_running") and not queue.get("queue_pending")

    # ---------------------------------------------------------------- the server process
    def rss_kib(self) -> int:
        """Resident memory of the server process now (VmRSS of /proc/<pid>/status), in KiB."""
        return _proc_status_kib(self.proc.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        """The server's peak resident memory so far (VmHWM), in KiB."""
        return _proc_status_kib(self.proc.pid, "VmHWM")

    # ---------------------------------------------------------------- results
    def output_listing(self) -> dict[str, int]:
        """Every file under the output folder, hidden and temporary ones included, as
        ``{relative path: size in bytes}``."""
        listing = {}
        for folder, _, names in os.walk(self.output_dir):
            for name in names:
                path = Path(folder) / name
                listing[path.relative_to(self.output_dir).as_posix()] = path.stat().st_size
        return listing

    def output_files(self, history: dict, key: str | None = None) -> list[Path]:
        """Files a finished prompt wrote, as local paths (outputs of every node, or of one key
        such as ``images``/``gifs``/``animated``)."""
        dirs = {"output": self.output_dir, "temp": self.temp_dir / "temp", "input": self.input_dir}
        files = []
        for node_out in (history.get("outputs") or {}).values():
            for k, items in node_out.items():
                if key is not None and k != key:
                    continue
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        base = dirs.get(item.get("type", "output"), self.output_dir)
                        files.append(base / item.get("subfolder", "") / item["filename"])
        return files

    def video_frames(self, path: Path) -> int:
        """Frames decoded from a video file with PyAV: in the test process when ``av`` is
        importable there, else in the host's Python (ComfyUI's SaveVideo needs PyAV, so it has it)."""
        try:
            import av
        except ImportError:
            av = None
        if av is not None:
            with av.open(str(path)) as container:
                return sum(1 for _ in container.decode(video=0))
        res = subprocess.run([self.python, "-c", _COUNT_FRAMES_SCRIPT, str(path)], capture_output=True,
                             text=True, timeout=120)
        if res.returncode != 0:
            raise HostError(f"cannot read {path} with the host's PyAV:\n{res.stdout}\n{res.stderr}")
        return int(res.stdout.strip().splitlines()[-1])

    def decoded_frames(self, path: Path) -> list[str]:
        """sha256 of every decoded frame's RGB pixels of an animated WEBP or a video file, in
        order, so two files can be compared by what they show (their bytes also carry the
        prompt as metadata). Decoded in the test process (Pillow for WEBP, PyAV for video) when
        importable there, else in the host's Python (ComfyUI needs both)."""
        path = Path(path)
        try:
            return _frame_digests(str(path))
        except ImportError:
            pass
        res = subprocess.run([self.python, "-c", _FRAME_DIGESTS_SCRIPT, str(Path(__file__).parent), str(path)],
                             capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise HostError(f"cannot decode {path} with the host's Python:\n{res.stdout}\n{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def cleanup_scratch(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def outcome(entry: dict) -> tuple[str, str | None]:
    """How a finished prompt's history entry ended: ``("success", None)``, ``("interrupted",
    node id)`` or ``("error", node id)``."""
    status = entry.get("status") or {}
    for event, data in status.get("messages", []):
        if event == "execution_interrupted":
            return "interrupted", data.get("node_id")
        if event == "execution_error":
            return "error", data.get("node_id")
    if status.get("status_str") == "error" or not status.get("completed", True):
        return "error", None
    return "success", None


def _proc_status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise HostError(f"/proc/{pid}/status has no {field} (not Linux?)")


class Messages:
    """ComfyUI's websocket (``/ws?clientId=...``) read by a background thread: every JSON message
    is kept in order as ``(type, data)`` in ``log``, with its arrival time (``time.monotonic()``)
    in ``times``; binary frames (previews) are dropped.

    Standard library only: a minimal RFC 6455 client (the server's frames are unmasked; ours,
    pongs and the close, are masked as the protocol requires).
    """

    def __init__(self, port: int, client_id: str, timeout: float = 30):
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._sock.sendall((
            f"GET /ws?clientId={client_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise HostError("the server closed the websocket during the handshake")
            head += chunk
        head, self._buffer = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise HostError("websocket handshake refused: " + head.decode("latin-1").splitlines()[0])
        self._sock.settimeout(None)
        self.log: list[tuple[str, dict]] = []
        self.times: list[float] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, name="comfyui-websocket", daemon=True)
        self._thread.start()

    def __enter__(self) -> "Messages":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("websocket closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)  # control frames: < 126 bytes

    def _read_loop(self) -> None:
        message, kind = b"", None
        try:
            while True:
                first, second = self._read(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._read(8))[0]
                mask = self._read(4) if second & 0x80 else None
                payload = self._read(length)
                if mask:
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                if opcode == 0x8:  # close
                    break
                if opcode == 0x9:  # ping
                    self._send(0xA, payload)
                    continue
                if opcode in (0x1, 0x2):
                    message, kind = payload, opcode
                elif opcode == 0x0:
                    message += payload
                else:
                    continue
                if first & 0x80 and kind == 0x1:
                    data = json.loads(message.decode("utf-8"))
                    with self._changed:
                        self.log.append((data.get("type"), data.get("data") or {}))
                        self.times.append(time.monotonic())
                        self._changed.notify_all()
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()

    def wait_for(self, match, timeout: float = 600, start: int = 0) -> tuple[str, dict] | None:
        """The first message from index ``start`` on for which ``match(type, data)`` is true; waits
        for it up to ``timeout`` s, None if it never came (or the socket closed)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = start
            while True:
                for kind, data in self.log[seen:]:
                    if match(kind, data):
                        return kind, data
                seen = max(seen, len(self.log))
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._changed.wait(left)

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)


def _frame_digests(path: str) -> list[str]:
    """sha256 per decoded RGB frame (see ComfyHost.decoded_frames); ImportError without the decoder."""
    if path.lower().endswith(".webp"):
        from PIL import Image, ImageSequence

        with Image.open(path) as image:
            return [hashlib.sha256(frame.convert("RGB").tobytes()).hexdigest()
                    for frame in ImageSequence.Iterator(image)]
    import av

    with av.open(path) as container:
        return [hashlib.sha256(frame.to_ndarray(format="rgb24").tobytes()).hexdigest()
                for frame in container.decode(video=0)]


_FRAME_DIGESTS_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from comfy_host import _frame_digests
print(json.dumps(_frame_digests(sys.argv[2])))
"""


def png_info(path: Path) -> tuple[int, int, bytes]:
    """(width, height, decompressed IDAT) of a PNG, standard library only. The IDAT bytes are the
    filtered scanlines: for files written by the same encoder (ComfyUI's SaveImage), equal bytes
    mean equal pixels; metadata chunks (prompt, workflow) are left out."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, width, height = 8, [], 0, 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    return width, height, zlib.decompress(b"".join(idat))


_COUNT_FRAMES_SCRIPT = r"""
import sys, av
with av.open(sys.argv[1]) as container:
    print(sum(1 for _ in container.decode(video=0)))
"""


def webp_info(path: Path) -> tuple[int, int, int, int]:
    """(frames, width, height, duration in ms) of an animated WEBP, standard library only, from
    the ANMF chunks of the RIFF container. The encoder merges identical consecutive frames into
    one longer frame (e.g. a hold on the last image), so count played frames by the duration."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError(f"{path} is not a WEBP")
    pos, frames, width, height, duration = 12, 0, 0, 0, 0
    while pos + 8 <= len(data):
        kind, n = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = data[pos + 8:pos + 8 + n]
        if kind == b"VP8X":
            width = 1 + int.from_bytes(body[4:7], "little")
            height = 1 + int.from_bytes(body[7:10], "little")
        elif kind == b"ANMF":
            frames += 1
            duration += int.from_bytes(body[12:15], "little")
        pos += 8 + n + (n & 1)
    return frames, width, height, duration


# -------------------------------------------------------------------- the pack's own mapping
_PACK_KEYS_SCRIPT = r"""
import importlib.util, json, os, sys
comfy_dir, pack_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, comfy_dir)
from comfy.cli_args import args
args.cpu = True
import folder_paths  # noqa: F401  (a pack may import it at load time, as under ComfyUI)
name = pack_dir.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, os.path.join(pack_dir, "__init__.py"))
mod = importlib.util.module_from_spec(spec)
sys.modules[name] = mod
spec.loader.exec_module(mod)
print("\nLATENT_PAINTER_KEYS=" + json.dumps(sorted(getattr(mod, "NODE_CLASS_MAPPINGS", {}) or {})))
"""


def pack_node_keys(host: "ComfyHost | None" = None) -> list[str]:
    """Keys of the pack's NODE_CLASS_MAPPINGS.

    Imported in the test process as the installed package ``latent_painter`` when that works; if
    the pack's node modules need ComfyUI at import time, it is imported the way ComfyUI does it,
    in the host's Python (``host`` must then be given).
    """
    try:
        import latent_painter

        return sorted(latent_painter.NODE_CLASS_MAPPINGS)
    except ImportError as e:
        if host is None:
            raise
        first_error = e
    res = subprocess.run([host.python, "-c", _PACK_KEYS_SCRIPT, str(host.path), str(PROJECT_ROOT)],
                         cwd=host.path, capture_output=True, text=True, timeout=300)
    for line in res.stdout.splitlines():
        if line.startswith("LATENT_PAINTER_KEYS="):
            return json.loads(line.split("=", 1)[1])
    raise HostError(f"cannot import the pack in the test process ({first_error!r}) nor in the "
                    f"host's Python:\n{res.stdout}\n{res.stderr}")


# -------------------------------------------------------------------- scripts in the host's Python
# What a script run in the host's Python (no server) starts with: ComfyUI's checkout on the path in
# CPU mode, and the pack importable as ``latent_painter`` (a link in a scratch folder, as custom_nodes
# holds it). The script is then given ``out``, the path to write its JSON result to.
_HOST_SCRIPT_PRELUDE = r"""
import sys, tempfile
from pathlib import Path
comfy_path, root, out = sys.argv[1:4]
sys.path.insert(0, comfy_path)
scratch = tempfile.mkdtemp()
(Path(scratch) / "latent_painter").symlink_to(root, target_is_directory=True)
sys.path.insert(0, scratch)
from comfy.cli_args import args
args.cpu = True
"""


def run_host_script(script: str, out: Path, timeout: float = 600):
    """Run ``script`` (after the prelude above) in the host's Python and return the JSON it wrote to
    ``out``; skips without COMFYUI_PATH, fails with the script's output when it fails."""
    path = comfy_path_or_skip()
    res = subprocess.run([comfy_python(path), "-c", _HOST_SCRIPT_PRELUDE + script, str(path), str(PROJECT_ROOT),
                          str(out)], capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, COMFYUI_PATH=str(path)))
    if res.returncode != 0:
        raise HostError(f"the host script failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    print(res.stdout)
    return json.loads(Path(out).read_text())


# -------------------------------------------------------------------- API-format prompt builders
def txt2img_prompt(ckpt_name: str, *, seed: int = 0, steps: int = 4, cfg: float = 7.0,
                   sampler_name: str = "euler", scheduler: str = "normal", width: int = 64,
                   height: int = 64, positive: str = "a painting of a lighthouse",
                   negative: str = "", prefix: str = "lp_host_test") -> dict:
    """The core text-to-image graph in API format. Node ids: 1 loader, 2/3 positive/negative,
    4 empty latent, 5 KSampler, 6 VAEDecode, 7 SaveImage; tests may add or replace nodes."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage",
              "inputs": {"width": width, "height": height, "batch_size": 1}},
        "5": {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": seed, "steps": steps, "cfg": cfg,
                         "sampler_name": sampler_name, "scheduler": scheduler,
                         "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
                         "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
    }
