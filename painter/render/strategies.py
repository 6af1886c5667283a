"""Decode strategies: how the frames of a painting are decoded, behind one small protocol.

A strategy is one function ``prepare(view, options, shape) -> run`` (or the text of why it cannot
decode this VAE at this size) in a module of its own, plus one :func:`register_strategy` line in
:mod:`.decoding`, which holds the order they are tried in; ``run(latent_chunks, stats)`` yields
decoded ``IMAGE`` chunks in frame order. The decoder reaches a strategy as a
:class:`DecoderView`: its ``decode`` (what every frame is held to) and what is known of its structure.

Decode modes (the nodes' ``decode`` input): ``full`` decodes every frame whole; ``incremental`` uses
the first registered strategy that can decode this VAE; ``auto`` the first one that also *promises*
its bound (measured to hold it on every frame, README "Incremental decoding"), else full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from .spans import IncrementalCanvas, IncrementalOptions, IncrementalStats, decode_verified

DECODE_MODES = ("auto", "full", "incremental")

Run = Callable[[Iterable[torch.Tensor], IncrementalStats], Iterator[torch.Tensor]]


@dataclass(frozen=True, eq=False)
class DecoderView:
    """What the renderer knows of a VAE's decoder.

    decode:  ``decode(latents [n,C,h,w]) -> IMAGE [n,H,W,3]``: the full decode every frame is held to.
    layers:  the decoder as a sequence of :class:`~.staged.Layer` s (the TAESD family), or None.
    network: the modules of an AutoencoderKL-style decoder for change propagation, or None.
    exact:   the layers run in full are ``decode``, bit for bit (else the first frame compares them).
    """

    decode: Callable[[torch.Tensor], torch.Tensor]
    name: str = "VAE"
    layers: tuple | None = None
    network: object | None = None
    exact: bool = False


@dataclass(frozen=True)
class Strategy:
    """A registered decode strategy. ``promised``: it holds ``IncrementalOptions.min_psnr`` on every
    frame where it runs (measured, README), so ``decode=auto`` may choose it."""

    name: str
    prepare: Callable[[DecoderView, IncrementalOptions, tuple[int, ...]], Run | str]
    description: str
    promised: bool = True

    def start(self, view: DecoderView, options: IncrementalOptions, shape: tuple[int, ...]) -> Run | str:
        """:attr:`prepare` for latents of ``shape``, its run naming this strategy in the stats it fills in."""
        run = self.prepare(view, options, shape)
        if isinstance(run, str):
            return run

        def named(chunks, stats):
            stats.strategy = self.name
            return run(chunks, stats)

        return named


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make ``strategy`` one the decode modes choose from (in registration order)."""
    STRATEGIES[strategy.name] = strategy
    return strategy


def incremental(start: Callable[[DecoderView, IncrementalOptions, tuple[int, ...]], IncrementalCanvas | str]):
    """The ``prepare`` of an incremental strategy from the function that starts its canvas: frames
    then come out in the verified spans of :func:`~.spans.decode_verified`."""

    def prepare(view: DecoderView, options: IncrementalOptions, shape: tuple[int, ...]) -> Run | str:
        canvas = start(view, options, shape)
        if isinstance(canvas, str):
            return canvas
        return lambda chunks, stats: decode_verified(canvas, view.decode, chunks, options, stats)

    return prepare


def view_of(decoder) -> DecoderView:
    """``decoder`` as a :class:`DecoderView`: itself, or a bare ``decode`` callable (no structure)."""
    if isinstance(decoder, DecoderView):
        return decoder
    if not callable(decoder):
        raise ValueError(f"decoder must be a VAE's decode or a DecoderView, got {type(decoder).__name__}")
    return DecoderView(decode=decoder, name=getattr(decoder, "__qualname__", "VAE"))


def choose(view: DecoderView, mode: str, options: IncrementalOptions, shape: tuple[int, ...]) -> tuple[str, Run, str | None]:
    """``(strategy name, run, why not incremental)`` for a decode mode and latents of ``shape``; full
    when no strategy fits."""
    if mode not in DECODE_MODES:
        raise ValueError(f"decode: unknown mode {mode!r}; use one of {', '.join(DECODE_MODES)}")
    reasons = []
    if mode != "full":
        for strategy in STRATEGIES.values():
            if strategy.name == "full":
                continue
            if mode == "auto" and not strategy.promised:
                reasons.append(f"{strategy.name}: its bound is not promised (use decode=incremental to try it)")
                continue
            run = strategy.start(view, options, shape)
            if not isinstance(run, str):
                return strategy.name, run, None
            reasons.append(f"{strategy.name}: {run}")
    full = STRATEGIES["full"].start(view, options, shape)
    why = None if mode == "full" else f"{view.name}: " + ("; ".join(reasons) or "no incremental strategy")
    return "full", full, why


__all__ = ["DECODE_MODES", "DecoderView", "STRATEGIES", "Strategy", "choose", "incremental", "register_strategy", "view_of"]
