"""Recording sampling runs and turning the right one into a plan (pure torch, no ComfyUI).

A captured model reports every sampling run made with it: where the run started (its input
latent), the sigma schedule, every step's predicted original (x0, already in LATENT space) and
the result. This module keeps those records and answers the getter's question: *which run made
this latent, and what plan does it give?*

- **Which run.** The run whose result is the given latent, bit for bit (or whose last
  prediction is, as SamplerCustom's ``denoised_output``). The newest run wins a tie.
- **Joined passes.** A run that starts from an earlier run's result, at the same size and in
  the same latent space, continues it (KSampler Advanced base then refiner with the leftover
  noise, or a second pass on the first one's output): its plan is the earlier run's steps
  followed by its own. The link is found when the run begins, so it holds across models.
- **Memory.** Each step's x0 is written once into one preallocated float32 buffer
  ``[B, T, C, H, W]`` on the CPU; a plan of batch item ``b`` of a single run is a view of
  ``buffer[b]`` (no copy). A store keeps at most ``max_runs`` runs and forgets the runs of an
  earlier session (queue run) as soon as the model samples in a new one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from .plan import LatentFormat, Plan, PlanError, make_plan

# Runs one captured model keeps within one session (queue run); older ones are dropped first.
DEFAULT_MAX_RUNS = 16
# Runs of several stores are ordered by this serial (newest wins).
_SERIAL = itertools.count()


@dataclass(frozen=True)
class RunOrigin:
    """Where a run was made, for error messages (ComfyUI's prompt id and the sampler's node id)."""

    session: str | None = None
    node: str | None = None

    def describe(self) -> str:
        return f"node {self.node}" if self.node is not None else "a sampler"


class Run:
    """One sampling run: its schedule, every step's predicted original and its result.

    ``record(step, x0)`` takes x0 ``[B,C,H,W]`` in LATENT space (it may be a view of the
    sampler's own buffer: it is copied at once). Samplers may report a step twice or skip one:
    the last report of a step wins and steps are kept in order.
    """

    def __init__(self, start: torch.Tensor, sigmas: torch.Tensor, latent_format: LatentFormat,
                 origin: RunOrigin = RunOrigin(), continues: "Run | None" = None):
        self.start_shape = tuple(start.shape)
        self.sigmas = sigmas.detach().to("cpu", torch.float32, copy=True).flatten()
        self.latent_format = latent_format
        self.origin = origin
        self.continues = continues
        self.capacity = max(1, self.sigmas.numel() - 1)  # one report per step; grown if a sampler makes more
        self.buffer: torch.Tensor | None = None  # [B, capacity, C, H, W], allocated on the first report
        self.filled: list[bool] = []
        self.result: torch.Tensor | None = None
        self.serial = next(_SERIAL)

    # ---------------------------------------------------------------- recording
    def record(self, step: int, x0: torch.Tensor) -> None:
        step = int(step)
        if step < 0:
            return
        if self.buffer is None:
            batch, *item = x0.shape
            self.buffer = torch.empty((batch, self.capacity, *item), dtype=torch.float32, device="cpu")
            self.filled = [False] * self.capacity
        if step >= self.buffer.shape[1]:
            self._grow(step + 1)
        self.buffer[:, step].copy_(x0)
        self.filled[step] = True

    def _grow(self, needed: int) -> None:
        # Samplers with a variable step count (dpm_adaptive) may report past the schedule's length.
        capacity = max(needed, 2 * self.buffer.shape[1])
        grown = torch.empty((self.buffer.shape[0], capacity, *self.buffer.shape[2:]), dtype=torch.float32)
        grown[:, : self.buffer.shape[1]].copy_(self.buffer)
        self.buffer = grown
        self.filled += [False] * (capacity - len(self.filled))

    def finish(self, result: torch.Tensor) -> None:
        self.result = result.detach().to("cpu", copy=True)

    # ---------------------------------------------------------------- reading
    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def steps(self) -> int:
        return sum(self.filled)

    @property
    def nbytes(self) -> int:
        """Bytes held for the predicted originals (the result and sigmas are one latent and a vector)."""
        return 0 if self.buffer is None else self.buffer.numel() * self.buffer.element_size()

    @property
    def batch(self) -> int:
        return self.start_shape[0] if self.result is None else self.result.shape[0]

    def _order(self) -> list[int]:
        return [step for step, done in enumerate(self.filled) if done]

    def originals(self, batch_index: int) -> torch.Tensor:
        """Predicted originals ``[T,C,H,W]`` of one batch item, in step order: a view when the
        steps were reported without gaps (the usual case), else a copy of the reported ones."""
        order = self._order()
        if order == list(range(len(order))):
            return self.buffer[batch_index, : len(order)]
        return self.buffer[batch_index, order]

    def step_sigmas(self) -> torch.Tensor:
        """The sigma each recorded original was predicted at (the sigma its step started from)."""
        order = self._order()
        if order and order[-1] < self.sigmas.numel():
            return self.sigmas[order]
        return torch.empty(0)

    def last_original(self) -> torch.Tensor | None:
        order = self._order()
        return None if not order else self.buffer[:, order[-1]]

    def made(self, latent: torch.Tensor) -> str | None:
        """``"result"`` when ``latent`` is this run's result bit for bit, ``"denoised"`` when it is
        its last predicted original (SamplerCustom's ``denoised_output``), else None."""
        if self.result is None:
            return None
        if _same(latent, self.result):
            return "result"
        last = self.last_original()
        if last is not None and _same(latent, last):
            return "denoised"
        return None

    def chain(self) -> list["Run"]:
        """This run and the runs it continues, oldest first."""
        runs, run = [], self
        while run is not None:
            runs.append(run)
            run = run.continues
        return runs[::-1]

    def describe(self) -> str:
        shape = "x".join(str(n) for n in (self.result.shape if self.result is not None else self.start_shape))
        return f"{self.origin.describe()}: {self.steps} steps, {shape}"


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return tuple(a.shape) == tuple(b.shape) and torch.equal(a.detach().to("cpu", b.dtype), b)


def continues(start: torch.Tensor, run: Run) -> bool:
    """Whether a run starting from ``start`` continues ``run``: it starts from ``run``'s result,
    bit for bit (so at the same size)."""
    return run.finished and run.made(start) == "result"


def newest_continued(start: torch.Tensor, runs, latent_format: LatentFormat) -> Run | None:
    """The newest finished run of ``runs`` (of any stores) whose result ``start`` is, in the same
    latent space; None for a fresh start (an empty latent never continues anything)."""
    if start.dim() != 4 or not torch.any(start):
        return None
    for run in sorted(runs, key=lambda run: run.serial, reverse=True):
        if run.latent_format.same_space(latent_format) and continues(start, run):
            return run
    return None


class RunStore:
    """The runs recorded through one captured model, bounded (see the module docstring)."""

    def __init__(self, max_runs: int = DEFAULT_MAX_RUNS):
        if max_runs < 1:
            raise ValueError("a run store keeps at least one run")
        self.max_runs = int(max_runs)
        self.runs: list[Run] = []
        self.session: str | None = None
        self.unsupported: str | None = None  # why the last sampling run could not be recorded

    def begin(self, start: torch.Tensor, sigmas: torch.Tensor, latent_format: LatentFormat,
              origin: RunOrigin = RunOrigin(), continues: Run | None = None) -> Run:
        """Start recording a run; forgets the runs of other sessions and the oldest beyond ``max_runs``."""
        if origin.session != self.session:
            self.runs = [run for run in self.runs if run.origin.session == origin.session]
            self.session = origin.session
        run = Run(start, sigmas, latent_format, origin, continues)
        self.runs.append(run)
        del self.runs[: max(0, len(self.runs) - self.max_runs)]
        self.unsupported = None
        return run

    def abandon(self, run: Run) -> None:
        """Forget a run that did not finish (an error or Cancel mid-sampling): no half records."""
        self.runs = [kept for kept in self.runs if kept is not run]

    def skipped(self, reason: str) -> None:
        self.unsupported = reason

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs)

    def find(self, latent: torch.Tensor) -> tuple[Run, str] | None:
        """The newest finished run that made ``latent`` and how (``"result"``/``"denoised"``)."""
        for run in reversed(self.runs):
            how = run.made(latent)
            if how is not None:
                return run, how
        return None


def plan_of_run(run: Run, latent: torch.Tensor, batch_index: int) -> Plan:
    """The plan of batch item ``batch_index`` of ``latent``, which ``run`` made: the originals of
    ``run`` and of every earlier pass it continues (same size, same latent space), ending on
    ``latent[batch_index]``."""
    batch = latent.shape[0]
    if not 0 <= batch_index < batch:
        raise PlanError(f"batch index {batch_index} is outside the batch of {batch} (0..{batch - 1})")
    passes = [p for p in run.chain() if p.steps > 0]
    if not passes:
        raise PlanError("the sampler ran no steps (denoise 0, or a start step at the end of the "
                        "schedule), so there is nothing to paint; give it at least one step")
    if len(passes) == 1:
        originals, sigmas = passes[0].originals(batch_index), passes[0].step_sigmas()
    else:
        originals = torch.cat([p.originals(batch_index) for p in passes])
        step_sigmas = [p.step_sigmas() for p in passes]
        sigmas = torch.cat(step_sigmas) if all(s.numel() for s in step_sigmas) else None
    final = latent[batch_index].detach().to("cpu", torch.float32)
    return make_plan(originals, final, sigmas, run.latent_format)


__all__ = [
    "DEFAULT_MAX_RUNS",
    "Run",
    "RunOrigin",
    "RunStore",
    "continues",
    "newest_continued",
    "plan_of_run",
]
