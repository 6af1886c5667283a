"""Rough-to-fine plans from a finished image, with no model: a Gaussian prior's exact denoiser run
through a real sampler loop.

Used by Plan From Image (engine/picture.py) and by the pack's own tools (the demo, tests and
benchmarks, painter/tools/standin.py). The prior, in model space ``z = (x - shift) * scale``
(global, channel-free stats, so ``z`` has about unit std): each channel ``c`` is stationary
Gaussian with a spatially constant mean ``mu_c`` and a radially symmetric power spectrum ``S_c(f)``
measured on the images given. Its optimal denoiser is the Wiener filter

    D(x, sigma) = mu + irfft2( S / (S + sigma^2) * rfft2(x - mu) ).

Starting from the exact probability-flow inversion of a target ``z``,

    x_T = mu + irfft2( sqrt((S + sigma_max^2) / S) * rfft2(z - mu) ),

every predicted original is (up to the Euler discretisation) the target low-passed by
``sqrt(S / (S + sigma^2))``: blurry to sharp, coarse structure before fine detail, and the
change front-loaded (measured on taef2 photo latents, 30 steps: ~60% of the step-to-step latent
change in the first half, ~5% in the last quarter, where the preview stalls). That is the shape
of a real diffusion run's x0 sequence without its hallucinated detail; the first one or two
steps change less than a real model's, which jumps from noise to a layout at once.
"""


from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .limits import LIMITS
from .plan import LatentFormat, Plan, PlanError, check_latent, make_plan

SIGMA_MAX = 14.6
SIGMA_MIN = 0.03
RHO = 7.0
# Spectrum floor relative to the mean power: keeps S strictly positive so the inversion's
# sqrt((S + sigma^2) / S) stays finite for frequencies the prior photos never showed.
SPECTRUM_FLOOR = 1e-4
# Significant digits kept in scale/shift: the same photos then give the same LatentFormat on
# every device (reduction order differs between backends in the last bits).
FORMAT_DIGITS = 4


def karras_sigmas(
    steps: int, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN, rho: float = RHO, device=None
) -> torch.Tensor:
    """``steps`` Karras et al. (2022) noise levels from ``sigma_max`` down to ``sigma_min``, then 0: ``[steps + 1]``."""
    if steps < 1:
        raise PlanError(f"stand-in sampler: steps must be at least 1, got {steps}")
    if not (sigma_max > sigma_min > 0):
        raise PlanError(f"stand-in sampler: need sigma_max > sigma_min > 0, got {sigma_max} and {sigma_min}")
    ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
    hi, lo = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    # Pin the ends: pow/root round-trips are not exact, and the schedule should say what was asked.
    sigmas[0], sigmas[-1] = sigma_max, sigma_min
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device=device, dtype=torch.float32)


def _round(value: float) -> float:
    return float(f"{value:.{FORMAT_DIGITS}g}")


def latent_format_from(latents: torch.Tensor, images: torch.Tensor | None = None, name: str | None = None) -> LatentFormat:
    """A :class:`LatentFormat` for TAESD-native latents: ``scale``/``shift`` make them about zero-mean, unit-std.

    With ``images`` (the decodes of ``latents``), ``rgb_factors`` are fitted by least squares
    (:func:`projection.fit_rgb_factors`). ``name`` defaults to ``"taef2"`` for 32 channels.
    """
    latents = check_latent(latents, "photo latents", dims=4)
    channels = latents.shape[1]
    shift = _round(latents.mean().item())
    std = latents.std().item()
    if not std > 0:
        raise PlanError("latent format: the photo latents are constant; give real photo latents")
    factors = bias = None
    if images is not None:
        from .projection import fit_rgb_factors

        fitted, fitted_bias = fit_rgb_factors(latents, images)
        factors = tuple(tuple(float(v) for v in row) for row in fitted.cpu().tolist())
        bias = tuple(float(v) for v in fitted_bias.cpu().tolist())
    if name is None:
        name = "taef2" if channels == 32 else f"taesd-{channels}ch"
    return LatentFormat(
        name=name, channels=channels, scale=_round(1.0 / std), shift=shift, rgb_factors=factors, rgb_bias=bias
    )


def _radius(height: int, width: int, device) -> torch.Tensor:
    """Spatial frequency magnitude (cycles per latent pixel) of each rfft2 coefficient: ``[H, W//2+1]``."""
    fy = torch.fft.fftfreq(height, device=device)
    fx = torch.fft.rfftfreq(width, device=device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


@dataclass(frozen=True, eq=False)
class GaussianPrior:
    """Per-channel mean ``mean [C]`` and radial power spectrum ``profile [C, B]``.

    The profile is in per-pixel variance units, on radial bins of width ``bin_width`` cycles per
    latent pixel (bin ``k`` is centred on ``k * bin_width``).
    """

    mean: torch.Tensor
    profile: torch.Tensor
    bin_width: float

    @classmethod
    def fit(cls, z: torch.Tensor) -> "GaussianPrior":
        """Estimate the prior from model-space photo latents ``[M,C,H,W]``."""
        _, channels, height, width = z.shape
        mean = z.mean(dim=(0, 2, 3))
        centred = z - mean[:, None, None]
        # |F|^2 / (H W): white noise of variance v then has flat power v, the units sigma^2 is in.
        power = (torch.fft.rfft2(centred).abs() ** 2).mean(0) / (height * width)
        bin_width = 1.0 / min(height, width)
        radius = _radius(height, width, z.device)
        index = torch.round(radius / bin_width).long().flatten()
        bins = int(math.ceil(math.sqrt(0.5) / bin_width)) + 2
        sums = torch.zeros(channels, bins, device=z.device).index_add_(1, index, power.reshape(channels, -1))
        counts = torch.bincount(index, minlength=bins).to(z.dtype)
        filled = counts > 0
        profile = sums[:, filled] / counts[filled]
        floor = SPECTRUM_FLOOR * power.mean(dim=(1, 2), keepdim=False).clamp_min(1e-12)[:, None]
        log_profile = torch.log(torch.maximum(profile, floor))
        # Smooth the estimate (a few photos give a noisy periodogram) in log space, where spectra
        # are near-linear; DC is left alone, since it measures photo-to-photo colour, not texture.
        if log_profile.shape[1] > 3:
            inner = log_profile[:, 1:]
            padded = torch.cat([inner[:, :1], inner, inner[:, -1:]], dim=1)
            smoothed = 0.25 * padded[:, :-2] + 0.5 * padded[:, 1:-1] + 0.25 * padded[:, 2:]
            log_profile = torch.cat([log_profile[:, :1], smoothed], dim=1)
        # One photo (or identical means) leaves no DC variance; photo spectra fall with frequency,
        # so DC is at least as strong as the lowest non-zero frequency.
        if log_profile.shape[1] > 1:
            log_profile[:, 0] = torch.maximum(log_profile[:, 0], log_profile[:, 1])
        centres = torch.arange(bins, device=z.device, dtype=z.dtype)[filled]
        # Resample onto every bin centre so lookups are a plain lerp.
        full = _interp(torch.arange(bins, device=z.device, dtype=z.dtype), centres, log_profile)
        return cls(mean=mean, profile=full.exp(), bin_width=bin_width)

    def spectrum(self, height: int, width: int) -> torch.Tensor:
        """``S [C, H, W//2+1]`` on the rfft2 grid of an ``H x W`` latent (any size: frequencies are in cycles per pixel)."""
        position = _radius(height, width, self.profile.device) / self.bin_width
        grid = torch.arange(self.profile.shape[1], device=self.profile.device, dtype=self.profile.dtype)
        return _interp(position.flatten(), grid, self.profile.log()).exp().reshape(-1, height, width // 2 + 1)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``fp [C, K]`` at sorted knots ``xp [K]``, evaluated at ``x [P]``; ends are held."""
    if xp.numel() == 1:
        return fp.expand(fp.shape[0], x.numel()).clone()
    x = x.clamp(xp[0], xp[-1])
    upper = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    lower = upper - 1
    t = (x - xp[lower]) / (xp[upper] - xp[lower])
    return fp[:, lower] + t * (fp[:, upper] - fp[:, lower])


@dataclass(frozen=True, eq=False)
class WienerDenoiser:
    """The posterior-mean denoiser of a stationary Gaussian prior, for one latent size."""

    mean: torch.Tensor  # [C]
    spectrum: torch.Tensor  # [C, H, W//2+1], strictly positive

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return self._filter(x, self.spectrum / (self.spectrum + sigma**2))

    def invert(self, z: torch.Tensor, sigma: float) -> torch.Tensor:
        """The probability-flow ODE's state at noise level ``sigma`` that ends exactly on ``z`` (in the continuous limit)."""
        return self._filter(z, torch.sqrt((self.spectrum + sigma**2) / self.spectrum))

    def _filter(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        mu = self.mean[:, None, None]
        shape = x.shape[-2:]
        return mu + torch.fft.irfft2(gain * torch.fft.rfft2(x - mu), s=shape)


def euler_sample(denoiser, x: torch.Tensor, sigmas: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Euler steps of the probability-flow ODE ``dx/dsigma = (x - D(x, sigma)) / sigma`` (k-diffusion's ``sample_euler``).

    Returns the final state and the predicted original ``D(x, sigma_i)`` of every step.
    """
    originals = []
    levels = sigmas.tolist()
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        denoised = denoiser(x, sigma)
        originals.append(denoised)
        if sigma_next == 0:
            # Algebraically x + (0 - sigma) * (x - D) / sigma == D; take it exactly so the final
            # latent is the last original bit for bit, as it is for a real sampler's last step.
            x = denoised
        else:
            x = x + (sigma_next - sigma) * (x - denoised) / sigma
    return x, originals


def photo_plan(
    target_latent: torch.Tensor,
    prior_latents: torch.Tensor,
    steps: int = 30,
    sigma_max: float = SIGMA_MAX,
    sigma_min: float = SIGMA_MIN,
    rho: float = RHO,
    noise: float = 0.0,
    seed: int = 0,
    latent_format: LatentFormat | None = None,
) -> Plan:
    """A :class:`Plan` whose predicted originals sharpen from a blur of ``target_latent`` to (nearly) it.

    ``target_latent [C,H,W]`` and ``prior_latents [M,C,H',W']`` are TAESD-native photo latents
    (the prior may be another size; it may include the target). The run starts from the exact
    probability-flow inversion of the target (plus ``noise * sigma_max`` of seeded fresh noise,
    default none) and takes ``steps`` Euler steps over a Karras schedule ending at sigma 0. The
    final latent equals the last original exactly; with ``noise=0`` it differs from the target
    only by the Euler discretisation and the last step's residual blur at ``sigma_min``.

    ``latent_format`` supplies scale/shift (model space ``(x - shift) * scale``), name and RGB
    factors; by default :func:`latent_format_from` the prior latents. Tensors follow the
    target's device.
    """
    target = check_latent(target_latent, "target latent", dims=3)
    prior = check_latent(prior_latents, "prior latents", dims=4).to(target.device)
    channels, height, width = target.shape
    if prior.shape[1] != channels:
        raise PlanError(
            f"stand-in plan: prior latents have {prior.shape[1]} channels, the target {channels}; "
            "encode both with the same TAESD"
        )
    if not LIMITS["plan steps"].admits(steps):
        raise PlanError(f"stand-in plan: steps must be {LIMITS['plan steps'].describe()}, got {steps}")
    if noise < 0 or not math.isfinite(noise):
        raise PlanError(f"stand-in plan: noise must be a finite amount >= 0, got {noise}")
    if latent_format is None:
        latent_format = latent_format_from(prior)
    scale, shift = latent_format.scale, latent_format.shift

    prior_z = (prior - shift) * scale
    prior_fit = GaussianPrior.fit(prior_z)
    denoiser = WienerDenoiser(prior_fit.mean, prior_fit.spectrum(height, width))
    sigmas = karras_sigmas(steps, sigma_max, sigma_min, rho, device=target.device)

    x = denoiser.invert((target - shift) * scale, float(sigmas[0]))
    if noise > 0:
        # Drawn on the CPU so a seed gives the same plan on every device.
        generator = torch.Generator().manual_seed(int(seed))
        fresh = torch.randn(target.shape, generator=generator, dtype=torch.float32).to(target.device)
        x = x + noise * float(sigmas[0]) * fresh
    _, originals = euler_sample(denoiser, x, sigmas)
    originals = torch.stack(originals) / scale + shift
    return make_plan(originals, originals[-1], sigmas[:-1], latent_format)
