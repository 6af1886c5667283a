"""Small real plans shared by the tests."""

import torch

from latent_painter.painter.plan import make_plan


def blurry_to_sharp_plan(channels=4, size=16, steps=6, seed=0, device="cpu"):
    """Predicted originals that sharpen toward a final latent, as a denoising run's do."""
    generator = torch.Generator().manual_seed(seed)
    final = torch.randn(channels, size, size, generator=generator)
    originals = []
    for step in range(1, steps + 1):
        width = max(1, (steps - step) * 2 + 1)
        blurred = torch.nn.functional.avg_pool2d(final[None], width, 1, width // 2, count_include_pad=False)[0]
        originals.append(blurred)
    originals[-1] = final
    return make_plan(torch.stack(originals).to(device))
