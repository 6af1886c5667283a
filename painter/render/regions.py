"""Where a frame changed, as a few boxes of latent pixels: what incremental decoding decodes again."""

from __future__ import annotations

import torch

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), stops exclusive


def changed_boxes(mask: torch.Tensor, gap: int) -> list[Box]:
    """Boxes covering the True positions of ``mask [h,w]``: an XY cut, splitting wherever a band of
    at least ``gap`` empty rows or columns runs across, so far-apart changes get a crop each and
    near ones share one (each crop pays for its own context)."""
    boxes = []
    pending = [(0, mask.shape[0], 0, mask.shape[1])]
    while pending:
        y0, y1, x0, x1 = pending.pop()
        part = mask[y0:y1, x0:x1]
        rows = _merge(_runs(part.any(dim=1).tolist()), gap)
        cols = _merge(_runs(part.any(dim=0).tolist()), gap)
        if not rows:
            continue
        if len(rows) == 1 and len(cols) == 1:
            boxes.append((y0 + rows[0][0], y0 + rows[0][1], x0 + cols[0][0], x0 + cols[0][1]))
        elif len(rows) > 1:
            pending.extend((y0 + a, y0 + b, x0, x1) for a, b in rows)
        else:
            pending.extend((y0, y1, x0 + a, x0 + b) for a, b in cols)
    return boxes


def grown(box: Box, by: int, height: int, width: int) -> Box:
    """``box`` widened by ``by`` on every side, clipped to ``height`` x ``width``."""
    y0, y1, x0, x1 = box
    return max(0, y0 - by), min(height, y1 + by), max(0, x0 - by), min(width, x1 + by)


def area(box: Box) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


def _runs(occupied: list[bool]) -> list[tuple[int, int]]:
    """[start, stop) runs of True."""
    runs, start = [], None
    for index, value in enumerate(occupied + [False]):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index))
            start = None
    return runs


def _merge(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in runs:
        if merged and start - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


__all__ = ["Box", "area", "changed_boxes", "grown"]
