"""Small real plans shared by the tests: the one builder of synthetic plans."""

import torch

from latent_painter.painter.engine.paint import PaintOptions, generate_events
from latent_painter.painter.engine.plan import LatentFormat, make_plan
from latent_painter.painter.engine.timeline import apply_event


def blurry_to_sharp_plan(channels=4, size=16, steps=6, seed=0, device="cpu", latent_format: LatentFormat | None = None):
    """Predicted originals that sharpen toward a final latent, as a denoising run's do
    (the last original is the final latent), in ``latent_format`` when given."""
    generator = torch.Generator().manual_seed(seed)
    final = torch.randn(channels, size, size, generator=generator)
    originals = []
    for step in range(1, steps + 1):
        width = max(1, (steps - step) * 2 + 1)
        blurred = torch.nn.functional.avg_pool2d(final[None], width, 1, width // 2, count_include_pad=False)[0]
        originals.append(blurred)
    originals[-1] = final
    return make_plan(torch.stack(originals).to(device), latent_format=latent_format)


def replay(plan, stages, options=None):
    """Events of a painting with the canvas before each one."""
    canvas = torch.zeros_like(plan.final)
    targets = plan.targets
    events = generate_events(targets, canvas, stages, options or PaintOptions())
    states = []
    for event in events:
        before = canvas.clone()
        apply_event(event, canvas, targets)
        states.append((event, before, canvas.clone()))
    return states
