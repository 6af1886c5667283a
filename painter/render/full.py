"""The full strategy: every frame decoded whole, a chunk of frames per decoder call."""

from __future__ import annotations

import time

import torch

from .strategies import Strategy


def prepare_full(view, options, shape):
    def run(chunks, stats):
        for chunk in chunks:
            started = time.perf_counter()
            # Contiguous chunks: CPU kernels pick algorithms by memory layout, and the last bits of a
            # decode then depend on it; this way a frame decodes as its latent alone would.
            with torch.no_grad():
                images = view.decode(chunk.contiguous())
            seconds = time.perf_counter() - started
            stats.frames += chunk.shape[0]
            stats.full_decodes += chunk.shape[0]
            stats.seconds += seconds
            stats.full_seconds += seconds
            yield images

    return run


STRATEGY = Strategy("full", prepare_full, "every frame decoded whole")
