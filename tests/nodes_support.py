"""The thin fake of the host for node tests: only nodes/host.py's progress bar is replaced."""

from __future__ import annotations

from latent_painter.nodes import NODE_CLASS_MAPPINGS as NODES


def run(node_id, **inputs):
    instance = NODES[node_id]()
    return getattr(instance, instance.FUNCTION)(**inputs)


class Interrupted(Exception):
    """Like comfy.model_management.InterruptProcessingException: not a ValueError."""


class Progress:
    """Stands in for host.progress: records every report; can raise like Cancel does."""

    def __init__(self, interrupt_after: int | None = None):
        self.reports: list[tuple[int, int]] = []
        self.totals: list[int] = []
        self.interrupt_after = interrupt_after

    def __call__(self, total):
        self.totals.append(total)

        def report(done, of):
            if self.interrupt_after is not None and len(self.reports) >= self.interrupt_after:
                raise Interrupted("cancelled")
            self.reports.append((done, of))

        return report
