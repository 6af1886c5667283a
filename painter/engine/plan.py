"""The plan: a diffusion run's predicted originals, the final latent and the latent format.

Everything here lives in the LATENT space that a VAE decodes (after the model's
``process_latent_out``), so a plan's tensors can be decoded or painted directly.
Plans are stored as ``.safetensors`` with JSON metadata; nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace

import torch

from .limits import LIMITS, check_budget

PLAN_FILE_KIND = "latent-painter-plan"
PLAN_FILE_VERSION = 1
# What each tensor of a plan file must be, checked in the header before any data is read.
PLAN_TENSOR_DIMS = {"originals": 4, "final": 3, "sigmas": 1}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2")
# A plan file's header is a few hundred bytes; its signature reads at most this much of one.
MAX_HEADER_BYTES = 1 << 20


class PlanError(ValueError):
    """A plan, canvas or plan file that cannot be used; the message names the input and the fix."""


@dataclass(frozen=True)
class LatentFormat:
    """Which latent space the tensors live in (ComfyUI's ``latent_format``, by value).

    Two plans can share a canvas only when their formats agree on name, channels,
    scale and shift. ``rgb_factors`` ([C][3]) is an optional linear latent->RGB
    projection, used to estimate how visible a change is. ``time_axis``: the host's
    latents carry a time axis of one (``[B,C,1,H,W]``, the Wan VAE's images); the plan
    holds them without it, and every latent painted from it gets it back
    (:mod:`.latents`). Plan files written before it existed load as ``False``.
    """

    name: str = "unknown"
    channels: int = 0
    scale: float = 1.0
    shift: float = 0.0
    rgb_factors: tuple[tuple[float, float, float], ...] | None = None
    rgb_bias: tuple[float, float, float] | None = None
    time_axis: bool = False

    def describe(self) -> str:
        return f"{self.name} ({self.channels} channels, scale {self.scale:g}, shift {self.shift:g})"

    def same_space(self, other: "LatentFormat") -> bool:
        return (self.name, self.channels, self.scale, self.shift) == (
            other.name,
            other.channels,
            other.scale,
            other.shift,
        )

    def rgb_matrix(self, device=None) -> torch.Tensor | None:
        if self.rgb_factors is None:
            return None
        return torch.tensor(self.rgb_factors, dtype=torch.float32, device=device)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "LatentFormat":
        """The format from its JSON object; anything but what :meth:`to_json` writes is a :class:`PlanError`."""
        if not isinstance(data, dict):
            raise PlanError("latent format: expected a JSON object")
        name = data.get("name", "unknown")
        channels = data.get("channels", 0)
        if not isinstance(name, str):
            raise PlanError(f"latent format: name must be text, got {type(name).__name__}")
        if not isinstance(channels, int) or not LIMITS["latent channels"].admits(channels):
            raise PlanError(f"latent format: channels must be {LIMITS['latent channels'].describe()}, got {channels!r}")
        factors = data.get("rgb_factors")
        bias = data.get("rgb_bias")
        time_axis = data.get("time_axis", False)
        if not isinstance(time_axis, bool):
            raise PlanError(f"latent format: time_axis must be true or false, got {str(time_axis)[:20]}")
        return cls(
            name=name,
            channels=channels,
            scale=_finite(data.get("scale", 1.0), "scale"),
            shift=_finite(data.get("shift", 0.0), "shift"),
            rgb_factors=None if factors is None else tuple(_rgb(row, "rgb_factors row") for row in _list(factors, "rgb_factors")),
            rgb_bias=None if bias is None else _rgb(bias, "rgb_bias"),
            time_axis=time_axis,
        )


def _list(value, name: str) -> list:
    if not isinstance(value, list):
        raise PlanError(f"latent format: {name} must be a list, got {type(value).__name__}")
    return value


def _finite(value, name: str) -> float:
    number = float(value) if isinstance(value, float) or (isinstance(value, int) and abs(value) < 1 << 64) else None
    if isinstance(value, bool) or number is None or not math.isfinite(number):
        raise PlanError(f"latent format: {name} must be a finite number, got {str(value)[:20]}")
    return number


def _rgb(values, name: str) -> tuple[float, float, float]:
    values = _list(values, name)
    if len(values) != 3:
        raise PlanError(f"latent format: {name} must have 3 values (R, G, B), got {len(values)}")
    return tuple(_finite(v, name) for v in values)


@dataclass(frozen=True, eq=False)
class Plan:
    """Predicted originals ``[T,C,H,W]`` (one per denoising step), the final latent ``[C,H,W]``,
    the sigma at which each original was predicted ``[T]`` (may be empty) and the latent format.

    Build plans with :func:`make_plan`, which validates and normalises the tensors.
    """

    originals: torch.Tensor
    final: torch.Tensor
    sigmas: torch.Tensor
    latent_format: LatentFormat = field(default_factory=LatentFormat)

    @property
    def steps(self) -> int:
        return self.originals.shape[0]

    @property
    def channels(self) -> int:
        return self.originals.shape[1]

    @property
    def spatial(self) -> tuple[int, int]:
        return tuple(self.originals.shape[2:])

    @property
    def targets(self) -> torch.Tensor:
        """The schedule targets: one per predicted original, ending exactly on the final latent.

        The last prediction is the final latent up to rounding (an Euler step to sigma 0
        recomputes it in floating point); then the final latent takes its place. When it
        is really different (a sampler that reports before its last step), the final latent
        becomes one more schedule.
        """
        last = self.originals[-1]
        tolerance = 1e-4 * float(self.final.abs().max().clamp_min(1.0))
        if torch.allclose(last, self.final, rtol=0, atol=tolerance):
            return torch.cat([self.originals[:-1], self.final[None]])
        return torch.cat([self.originals, self.final[None]])

    def to(self, device) -> "Plan":
        return replace(
            self,
            originals=self.originals.to(device),
            final=self.final.to(device),
            sigmas=self.sigmas.to(device),
        )


def check_latent(tensor, name: str, *, dims: int) -> torch.Tensor:
    """Return ``tensor`` as float32 after checking it is a finite, non-empty tensor of ``dims`` dims."""
    if not isinstance(tensor, torch.Tensor):
        raise PlanError(f"{name} must be a tensor, got {type(tensor).__name__}")
    if tensor.dim() != dims:
        raise PlanError(f"{name} must have {dims} dimensions, got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise PlanError(f"{name} is empty (shape {tuple(tensor.shape)}); give it at least one element")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise PlanError(f"{name} must be a floating-point tensor, got {tensor.dtype}")
    if tensor.is_complex():
        raise PlanError(f"{name} must be real, got {tensor.dtype}")
    tensor = tensor.detach().to(torch.float32)
    if not _all_finite(tensor):
        bad = (~torch.isfinite(tensor)).sum().item()
        raise PlanError(f"{name} contains {bad} NaN/inf values; re-run the sampler or clean the latent")
    return tensor


def _all_finite(tensor: torch.Tensor, chunk_elements: int = 1 << 20) -> bool:
    """``torch.isfinite(tensor).all()`` in slices along the first dimension: its temporaries
    (``abs`` and three masks) would otherwise cost ~1.7x a long plan on top of the plan itself."""
    rows = max(1, chunk_elements // max(1, tensor[0].numel()))
    return all(bool(torch.isfinite(part).all()) for part in tensor.split(rows))


def make_plan(
    originals,
    final=None,
    sigmas=None,
    latent_format: LatentFormat | None = None,
) -> Plan:
    """Validate and build a :class:`Plan`. ``final`` defaults to the last original."""
    originals = check_latent(originals, "predicted originals", dims=4)
    steps, channels, height, width = originals.shape
    _check_steps(steps)
    if final is None:
        final = originals[-1]
    final = check_latent(final, "final latent", dims=3).to(originals.device)
    if final.shape != originals.shape[1:]:
        raise PlanError(
            f"final latent has shape {tuple(final.shape)} but the predicted originals are "
            f"{tuple(originals.shape[1:])}; both must come from the same run"
        )
    if sigmas is None:
        sigmas = torch.empty(0)
    if not isinstance(sigmas, torch.Tensor):
        sigmas = torch.as_tensor(sigmas)
    sigmas = sigmas.detach().to(torch.float32).flatten().to(originals.device)
    if sigmas.numel() not in (0, steps):
        raise PlanError(f"{sigmas.numel()} sigmas for {steps} predicted originals; give one per original or none")
    if not torch.isfinite(sigmas).all():
        raise PlanError(f"sigmas contain NaN/inf")
    if latent_format is None:
        latent_format = LatentFormat(channels=channels)
    elif latent_format.channels == 0:
        latent_format = replace(latent_format, channels=channels)
    if latent_format.channels != channels:
        raise PlanError(
            f"latent format {latent_format.describe()} does not match the {channels}-channel latents; "
            "capture the plan with the model that made the latents"
        )
    if latent_format.rgb_factors is not None and len(latent_format.rgb_factors) != channels:
        raise PlanError(f"rgb_factors has {len(latent_format.rgb_factors)} rows for {channels} channels")
    return Plan(originals=originals, final=final, sigmas=sigmas, latent_format=latent_format)


def save_plan(plan: Plan, path: str | os.PathLike) -> str:
    """Write ``plan`` to ``path`` atomically (a half-written file never appears under ``path``)."""
    from safetensors.torch import save_file

    path = os.fspath(path)
    metadata = {
        "kind": PLAN_FILE_KIND,
        "version": str(PLAN_FILE_VERSION),
        "latent_format": json.dumps(plan.latent_format.to_json()),
    }
    tensors = {
        "originals": plan.originals.detach().to("cpu", torch.float32).contiguous(),
        "final": plan.final.detach().to("cpu", torch.float32).clone(),  # may view originals[-1]
        "sigmas": plan.sigmas.detach().to("cpu", torch.float32).contiguous(),
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".plan-", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a plan file is for sharing
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def plan_file_signature(path: str | os.PathLike) -> str:
    """What tells a plan file apart from the one that was under its name before, read without reading
    the tensors (plans reach gigabytes): the file's identity (a save replaces it with a new inode),
    size and modification time, and a digest of its safetensors header (shapes, offsets, metadata)."""
    path = os.fspath(path)
    status = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        digest.update(handle.read(min(length, MAX_HEADER_BYTES)))
    return f"{status.st_dev}:{status.st_ino}:{status.st_size}:{status.st_mtime_ns}:{digest.hexdigest()}"


def is_plan_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file carrying the plan marker (reads the header only)."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
            return (handle.metadata() or {}).get("kind") == PLAN_FILE_KIND
    except Exception:  # unreadable or foreign: simply not a plan
        return False


def load_plan(path: str | os.PathLike, device="cpu") -> Plan:
    """Read a plan written by :func:`save_plan`; any other file gives a :class:`PlanError` that
    names the file."""
    path = os.fspath(path)
    try:
        return _read_plan(path).to(device)
    except PlanError as error:
        raise PlanError(f"plan file {os.path.basename(path)!r}: {error}") from error


def _read_plan(path: str) -> Plan:
    from safetensors import safe_open

    if not os.path.isfile(path):
        raise PlanError("no such file; save a plan first or pick an existing file")
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            keys = set(handle.keys())
            if metadata.get("kind") != PLAN_FILE_KIND:
                raise PlanError(f"not a Latent Painter plan (no '{PLAN_FILE_KIND}' marker)")
            missing = set(PLAN_TENSOR_DIMS) - keys
            if missing:
                raise PlanError(f"missing tensors {sorted(missing)}; the file is damaged, save the plan again")
            _check_header(handle)
            tensors = {key: handle.get_tensor(key) for key in PLAN_TENSOR_DIMS}
    except PlanError:
        raise
    except Exception as error:  # safetensors raises its own types for truncated or foreign data
        raise PlanError(f"unreadable ({error}); the file is truncated or not a safetensors plan") from error
    version = metadata.get("version", "")
    if not (version.isascii() and version.isdigit()) or len(version) > 9:
        raise PlanError(f"bad format version {version[:20]!r}; the file is damaged, save the plan again")
    if int(version) > PLAN_FILE_VERSION:
        raise PlanError(f"format version {version} is newer than this pack reads ({PLAN_FILE_VERSION}); update the pack")
    if int(version) < 1:
        raise PlanError(f"format version {version} was never written by this pack; save the plan again")
    try:
        latent_format = LatentFormat.from_json(json.loads(metadata.get("latent_format", "{}")))
    except PlanError as error:
        raise PlanError(f"damaged {error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise PlanError(f"damaged latent format metadata ({type(error).__name__}); save the plan again") from None
    return make_plan(tensors["originals"], tensors["final"], tensors["sigmas"], latent_format)


def _check_steps(steps: int) -> None:
    limit = LIMITS["plan steps"]
    if steps > limit.high:
        raise PlanError(f"{steps} predicted originals is more than {limit.high:g}; {limit.hint}")


def _check_header(handle) -> None:
    """Refuse by the header alone (dtypes, dimensions, steps, size) before a byte of data is read."""
    shapes = {}
    for key, dims in PLAN_TENSOR_DIMS.items():
        view = handle.get_slice(key)
        dtype, shape = view.get_dtype(), tuple(view.get_shape())
        if dtype not in FLOAT_DTYPES:
            raise PlanError(f"tensor {key!r} is {dtype}, not floating point; the file is damaged or not a plan")
        if len(shape) != dims:
            raise PlanError(f"tensor {key!r} has shape {shape}, expected {dims} dimensions; save the plan again")
        shapes[key] = shape
    _check_steps(shapes["originals"][0])
    try:
        check_budget("plan", 4 * sum(math.prod(shape) for shape in shapes.values()), "the plan's tensors",
                     "capture fewer steps or a smaller latent")
    except ValueError as error:
        raise PlanError(str(error)) from None


__all__ = [
    "LatentFormat",
    "Plan",
    "PlanError",
    "check_latent",
    "is_plan_file",
    "load_plan",
    "make_plan",
    "plan_file_signature",
    "save_plan",
]
