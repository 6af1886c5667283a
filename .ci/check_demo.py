"""Checks the file the README's demo command wrote, as a user would look at it.

    .venv/bin/python .ci/check_demo.py latent_painter_demo.webp demo.log

1. the file exists;
2. it is an animated WEBP that plays the number of frames the demo reported (its last line,
   "wrote ...: N frames ... at F fps"), counted from the frames' durations (a frame equal to the
   one before is stored once, with a longer duration);
3. its first frame is the paper: the decode of the demo's white canvas;
4. its last frame is the decode of the plan's final latent (the painting ends on it bit for bit;
   the file is lossy WEBP at quality 85, so the comparison is a PSNR bound; measured 36.6 dB).

The plan and the canvas are rebuilt with the demo's own function and defaults
(``painter.tools.demo.demo_plan``), so this checks the file against what the demo painted.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy
import torch

MIN_PSNR = 33.0  # dB against the decoded latent (measured 36.6 at quality 85); the paper against the photo is below 12


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    error = float((image.double() - reference.double()).pow(2).mean())
    return math.inf if error == 0 else 10 * math.log10(1 / error)


def main(path: str, log: str) -> int:
    from PIL import Image, ImageSequence

    from latent_painter.painter.tools import demo
    from latent_painter.painter.tools.weights import find_or_download

    failures = []
    out = Path(path)
    if not out.is_file() or out.stat().st_size == 0:
        print(f"demo check: {out} was not written")
        return 1
    lines = [line for line in Path(log).read_text().splitlines() if line.startswith("wrote ")]
    match = re.search(r": (\d+) frames of (\d+)x(\d+) at ([\d.]+) fps", lines[-1]) if lines else None
    if match is None:
        print(f"demo check: the demo did not report its frames in {log}")
        return 1
    reported, fps = int(match[1]), float(match[4])
    with Image.open(out) as image:
        if image.format != "WEBP" or not getattr(image, "is_animated", False):
            failures.append(f"{out} is {image.format}, animated={getattr(image, 'is_animated', False)}; expected an animated WEBP")
        durations, frames = [], []
        for frame in ImageSequence.Iterator(image):
            rgb = numpy.array(frame.convert("RGB"))  # loads the frame, which sets its duration
            durations.append(frame.info["duration"])
            frames.append(torch.from_numpy(rgb).float() / 255)
    played = round(sum(durations) * fps / 1000)
    if played != reported:
        failures.append(f"the file plays {played} frames ({len(frames)} stored, {sum(durations)} ms at {fps:g} fps); the demo reported {reported}")

    torch.set_grad_enabled(False)
    args = demo.build_parser().parse_args(["--out", str(out)])
    vae = find_or_download(args.taesd).load()
    plan, canvas = demo.demo_plan(vae, args)
    paper = vae.decode(canvas[None])[0]
    final = vae.decode(plan.final[None])[0]
    first, last = psnr(frames[0], paper), psnr(frames[-1], final)
    if first < MIN_PSNR:
        failures.append(f"the first frame is not the paper: {first:.1f} dB against the decoded canvas (need {MIN_PSNR:g})")
    if last < MIN_PSNR:
        failures.append(f"the last frame is not the final latent's decode: {last:.1f} dB (need {MIN_PSNR:g})")
    print(f"demo check: {out} ({out.stat().st_size // 1024} KiB), animated WEBP, plays {played} frames "
          f"({len(frames)} stored) as reported; first frame {first:.1f} dB against the paper (mean "
          f"{float(frames[0].mean()):.3f}), last frame {last:.1f} dB against the final latent's decode")
    for failure in failures:
        print(f"demo check FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
