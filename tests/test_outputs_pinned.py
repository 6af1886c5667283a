"""Painted outputs pinned to stored references (tests/pinned_outputs.py; the measured tolerances
are in tests/README.md). A refactor of the engine must leave them unchanged; a change that means to
alter frames regenerates the references and says why in its commit.

The cases cover the stroke painter, each reveal action, a chain, both pacing methods (change with
and without a decoder's calibration), transitions, the interpolations, and the call paths of the
demo and the benchmarks at a small size (with the real taef2 weights; skipped without them).
"""

from __future__ import annotations

import warnings

import pytest

import pinned_outputs as pinned

REFERENCES, MEASURED = pinned.load_records(pinned.REFERENCE)


def check(case: str, actual: pinned.Record) -> None:
    near_tie = pinned.compare(case, REFERENCES[case], actual, MEASURED)
    if near_tie is not None:
        warnings.warn(f"pinned case {case!r}: {near_tie}; compared up to there and its last frame only")


@pytest.mark.parametrize("name", list(pinned.synthetic_cases()))
def test_painting_is_pinned(name):
    check(name, pinned.record_painting(pinned.synthetic_cases()[name]))


@pytest.mark.parametrize("name", list(pinned.interpolation_cases()))
def test_interpolation_is_pinned(name):
    check(f"interpolation {name}", pinned.Record(tensors={"latents": pinned.interpolation_cases()[name]()}))


@pytest.fixture(scope="module")
def photo_setup(taesd_folder):
    pytest.importorskip("skimage")
    return pinned.photo_setup(taesd_folder)


@pytest.mark.parametrize("name", list(pinned.real_cases(None, (None, None))))
def test_demo_and_benchmark_paths_are_pinned(name, photo_setup):
    check(f"taef2 {name}", pinned.record_painting(pinned.real_cases(*photo_setup)[name]))


def test_every_reference_is_exercised():
    """A case dropped from the code but left in the references (or the reverse) is a lost guard."""
    names = set(pinned.synthetic_cases()) | {f"interpolation {n}" for n in pinned.interpolation_cases()}
    names |= {f"taef2 {n}" for n in pinned.real_cases(None, (None, None))}
    assert names == set(REFERENCES)


# --- the comparison itself fails where it must ---------------------------------------------------


def test_a_choice_that_flips_far_from_a_tie_fails():
    case = "strokes default"
    reference = REFERENCES[case]
    kind, chosen, score, margin = next(c for c in reference.choices if c[0] == "stroke centre" and c[3] > 0.01)
    index = reference.choices.index((kind, chosen, score, margin))
    flipped = pinned.Record(list(reference.choices), dict(reference.tensors))
    flipped.choices[index] = (kind, (chosen[0] + 1,), score, margin)
    with pytest.raises(pinned.PinnedMismatch, match="not a near tie") as error:
        pinned.compare(case, reference, flipped, MEASURED)
    assert pinned.REGENERATE in str(error.value)


def test_a_flip_at_a_near_tie_is_reported_not_failed():
    case = "strokes default"
    reference = pinned.Record(list(REFERENCES[case].choices), dict(REFERENCES[case].tensors))
    kind, chosen, score, _ = reference.choices[0]
    reference.choices[0] = (kind, chosen, score, 0.0)  # the reference's two best options were tied
    flipped = pinned.Record(list(reference.choices), {name: t + 1 if t.is_floating_point() else t
                                                      for name, t in reference.tensors.items()})
    flipped.choices[0] = (kind, (chosen[0] + 1,), score, 0.0)
    assert "near tie" in pinned.compare(case, reference, flipped, MEASURED)


def test_a_frame_beyond_its_tolerance_fails_with_the_largest_difference():
    case = "fade"
    reference = REFERENCES[case]
    moved = pinned.Record(list(reference.choices), dict(reference.tensors))
    frames = reference.tensors["frames"].clone()
    frames[0, 0, 0, 0] += 1e-3
    moved.tensors["frames"] = frames
    with pytest.raises(pinned.PinnedMismatch, match=r"tensor 'frames' differs by up to 0\.001"):
        pinned.compare(case, reference, moved, MEASURED)


def test_a_last_frame_that_is_not_the_final_latent_fails():
    case = "glow"
    reference = REFERENCES[case]
    with pytest.raises(pinned.PinnedMismatch, match="bit for bit"):
        pinned.compare(case, reference, pinned.Record(reference.choices, reference.tensors, last_is_final=False), MEASURED)
