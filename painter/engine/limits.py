"""The limits of every input, in one table, and the one check that enforces them.

The nodes' widgets take their ``min``/``max`` from here, their tooltips and the engine's error
messages say the same ranges, and every check of a number goes through :func:`checked`. A limit is
a guard against typos and runaway allocations, not a taste: a value outside it is refused before
anything is allocated, with a message that names the input, the range and what to try instead.

Budgets (bytes) bound what a run may allocate; :func:`check_budget` refuses a request above one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """The values an input may take: ``low``..``high`` (``low`` itself excluded when ``above``),
    whole numbers only when ``whole``; ``hint`` is a value worth trying."""

    low: float
    high: float
    whole: bool = False
    above: bool = False
    hint: str = ""

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.above:
            return f"{kind} above {self.low:g} and at most {self.high:g}"
        return f"{kind} from {self.low:g} to {self.high:g}"

    def admits(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high


GIB = 1024**3

LIMITS: dict[str, Limit] = {
    # plans
    "plan steps": Limit(1, 10_000, whole=True, hint="use fewer sampling steps"),
    "roughness": Limit(0, 1, above=True, hint="1 starts from colour blobs, 0.5 from a soft blur"),
    "latent channels": Limit(0, 65_536, whole=True),
    "channel index": Limit(0, 4095, whole=True, hint="write channel numbers such as 0,2-3"),
    "batch_index": Limit(0, 4095, whole=True, hint="pick an image of the batch"),
    # painting
    "frames": Limit(0, 20_000, whole=True, hint="use 0 for automatic, or e.g. 240"),
    "cleanup_frames": Limit(0, 10_000, whole=True, hint="try 24"),
    "seed": Limit(0, 0xFFFFFFFF, whole=True),
    "strokes per schedule": Limit(1, 4096, whole=True, hint="use a stroke preset such as stroke24"),
    "radius": Limit(0, 512, hint="radii are in latent pixels of a 64x64 latent"),
    "move_cost": Limit(0, 100),
    "switch_cost": Limit(0, 100),
    "motivation": Limit(0, 100),
    "size_scale": Limit(0, 64, hint="0 scales strokes with the latent"),
    "early_size": Limit(0, 16, above=True, hint="try 1"),
    "strokes_per_frame": Limit(1, 4096, whole=True),
    "schedules": Limit(0, 10_000, whole=True, hint="0 takes a share of the rest"),
    "channels_per_stroke": Limit(0, 4096, whole=True, hint="0 is automatic"),
    "action frames": Limit(0, 1024, whole=True, hint="0 is the author's count for the action"),
    "block": Limit(0, 512, above=True, hint="try 2"),
    "fraction": Limit(0, 1, above=True, hint="try 1"),
    # transitions
    "depth": Limit(0, 1),
    "guidance": Limit(0, 1),
    "guidance_steps": Limit(1, 1000, whole=True, hint="try 12"),
    "interpolated frames": Limit(2, 20_000, whole=True, hint="both ends are included"),
    # canvases
    "colour component": Limit(0, 1),
    # decoding and output
    "chunk_size": Limit(1, 4096, whole=True, hint="try 16"),
    "played frames": Limit(1, 100_000, whole=True, hint="lower the holds or use fewer or shorter sequences"),
    "hold": Limit(0, 100_000, whole=True, hint="use 0 for no hold"),
    "fps": Limit(0, 1000, above=True, hint="try 24"),
    "duration_seconds": Limit(0, 3600),
    "quality": Limit(0, 100, whole=True, hint="try 80"),
    "webp side": Limit(1, 16_384, whole=True, hint="use mp4 for larger frames"),
    # incremental decoding
    "min_psnr": Limit(10, 120, hint="try 45"),
    "threshold": Limit(0, 1000, hint="try 0.1"),
    "halo": Limit(0, 256, whole=True),
    "context": Limit(0, 256, whole=True),
    "check_every": Limit(2, 4096, whole=True, hint="try 32"),
    "max_area": Limit(0, 1, above=True),
}

BUDGETS: dict[str, int] = {
    # float32 frames of one painting with their stroke maps (20,000 frames of a 128-channel 32x32
    # latent are 10 GiB; 372 frames of a 1024 px pixel-space latent, 3x1024x1024, are 8 GiB)
    "painted frames": 8 * GIB,
    # a plan file's tensors as float32 (a 1,000-step plan of a 128-channel 256x256 latent is 32 GiB)
    "plan": 32 * GIB,
    # one IMAGE batch (1,000 frames of 1536x1536 float32 RGB are 26 GiB)
    "images": 32 * GIB,
}


def checked(name: str, value, limit: Limit | None = None):
    """``value`` when :data:`LIMITS` ``[name]`` (or ``limit``) admits it, else a ``ValueError`` that
    names the input, the range and a value to try."""
    limit = limit or LIMITS[name]
    if not limit.admits(value):
        hint = f"; {limit.hint}" if limit.hint else ""
        raise ValueError(f"{name} must be {limit.describe()}, got {value!r}{hint}")
    return value


def check_budget(budget: str, size: int, what: str, fix: str) -> None:
    """Refuse ``size`` bytes of ``what`` above :data:`BUDGETS` ``[budget]``, before allocating."""
    if size > BUDGETS[budget]:
        raise ValueError(f"{what} need {size / GIB:.1f} GiB, more than {BUDGETS[budget] / GIB:g} GiB; {fix}")


def widget(name: str, **options) -> dict:
    """A ComfyUI INT/FLOAT widget's options with ``min``/``max`` from :data:`LIMITS` (an ``above``
    limit's minimum is the next step up)."""
    limit = LIMITS[name]
    low = limit.low
    if limit.above:
        low = limit.low + (1 if limit.whole else options.get("step", 0.01))
    return {"min": int(low) if limit.whole else low, "max": int(limit.high) if limit.whole else limit.high, **options}


__all__ = ["BUDGETS", "LIMITS", "Limit", "check_budget", "checked", "widget"]
