"""The full strategy: every frame decoded whole, a chunk of frames per decoder call, and the last frame
alone, so the animation ends exactly on what a VAE Decode of the final latent shows."""

from __future__ import annotations

import time

import torch

from .strategies import Strategy


def prepare_full(view, options, shape):
    def run(chunks, stats):
        previous = None
        for chunk in chunks:
            if previous is not None:
                yield decoded(previous, stats)
            previous = chunk
        if previous is not None:
            if previous.shape[0] > 1:
                yield decoded(previous[:-1], stats)
            yield decoded(previous[-1:], stats)

    def decoded(latents, stats):
        started = time.perf_counter()
        # Contiguous chunks: CPU kernels pick algorithms by memory layout, so a frame decodes as its
        # latent alone, in the same layout, would.
        with torch.no_grad():
            images = view.decode(latents.contiguous())
        seconds = time.perf_counter() - started
        stats.frames += latents.shape[0]
        stats.full_decodes += latents.shape[0]
        stats.seconds += seconds
        stats.full_seconds += seconds
        return images

    return run


STRATEGY = Strategy("full", prepare_full, "every frame decoded whole")
