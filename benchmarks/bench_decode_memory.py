"""Peak memory of decoding a long animation in chunks, against the naive ways (ARCHITECTURE.md "Targets", memory).

Run:  .venv/bin/python benchmarks/bench_decode_memory.py [--taesd FOLDER] [--quick]

Target: decoding N frames never needs more than one chunk of decoded images beyond the output
itself. Here "one chunk" is measured, not assumed: the peak of decoding one chunk alone
(decoder activations included), with the real taef2 TAESD decoder at a small size
(--latent 8: 8x8 latents -> 64x64 px, 1,000 frames by default).

How it is measured: each case runs in a fresh subprocess (this script with --case). The child
loads the decoder, makes the input latents, decodes one chunk to warm up (oneDNN primitives,
thread pools), frees it, then resets the kernel's peak-RSS counter (``echo 5 >
/proc/self/clear_refs``) and reads VmRSS as its baseline; after the case it reads VmHWM from
/proc/self/status. Peak = VmHWM - baseline: what the case itself added at its worst moment.
Children run with ``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns every freed large
buffer to the kernel at once (by default its threshold adapts and freed tensors linger in the
heap, which would make RSS lag behind what the code holds); RSS then tracks the live tensors.

Cases (same latents, same chunk size):
- chunked:   ``frames.decode_frames(decoder.decode, latents, chunk_size)`` (ours)
- one chunk: ``decoder.decode(latents[:chunk_size])`` (the unit of the target)
- naive call: ``decoder.decode(latents)``, every frame in one call
- naive cat:  ``torch.cat([decoder.decode(chunk) for chunk in chunks])`` (holds the chunks and the output)

Prints the output size, the chunked peak beyond the output, the one-chunk peak, their ratio
(target ~1: at most one chunk beyond the output) and the naive ratios, all measured in this run.
"""

from __future__ import annotations

import argparse
import sys
import time

from child_memory import emit_result, reset_peak, spawn_case, status_kib

CASES = ("chunked", "one_chunk", "naive_call", "naive_cat")
LABELS = {
    "chunked": "decode_frames, chunked (ours)",
    "one_chunk": "one chunk alone",
    "naive_call": "naive: one decode call",
    "naive_cat": "naive: torch.cat of chunks",
}


def run_case(case: str, taesd: str, frames: int, latent: int, chunk: int) -> dict:
    """In the child: measure one case and return its figures (bytes)."""
    import gc

    import torch

    from latent_painter.painter.render.decoding import decode_frames
    from latent_painter.painter.tools.taesd import TinyAutoencoder

    torch.set_grad_enabled(False)
    decoder = TinyAutoencoder.from_folder(taesd)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(frames, decoder.latent_channels, latent, latent, generator=generator)
    warm = decoder.decode(latents[:chunk].contiguous())
    shape = (frames, *warm.shape[1:])
    del warm
    gc.collect()
    reset_peak()
    baseline = status_kib("VmRSS")
    started = time.perf_counter()
    if case == "chunked":
        out = decode_frames(decoder.decode, latents, chunk_size=chunk)
    elif case == "one_chunk":
        out = decoder.decode(latents[:chunk].contiguous())
    elif case == "naive_call":
        out = decoder.decode(latents)
    elif case == "naive_cat":
        out = torch.cat([decoder.decode(latents[i : i + chunk].contiguous()) for i in range(0, frames, chunk)])
    else:
        raise SystemExit(f"unknown case {case!r}")
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM")
    return {
        "case": case,
        "peak_bytes": (peak - baseline) * 1024,
        "output_bytes": out.numel() * out.element_size(),
        "frame_shape": list(shape[1:]),
        "seconds": seconds,
        "baseline_bytes": baseline * 1024,
    }


def spawn(case: str, args) -> dict:
    return spawn_case(__file__, case, ["--taesd", args.taesd, "--frames", str(args.frames),
                                       "--latent", str(args.latent), "--chunk", str(args.chunk)])


def mib(value: float) -> str:
    return f"{value / 2**20:9.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taesd", help="folder with taef2_decoder.pth (default: the lookup of painter/tools/weights.py)")
    parser.add_argument("--quick", action="store_true", help="250 frames instead of 1,000 (a smoke run)")
    parser.add_argument("--frames", type=int, default=None, help="frames to decode (default 1000, --quick 250)")
    parser.add_argument("--latent", type=int, default=8, help="latent side (8 -> 64x64 px)")
    parser.add_argument("--chunk", type=int, default=16, help="latents per decoder call (decode_frames' default 16)")
    parser.add_argument("--skip-naive-call", action="store_true",
                        help="skip the one-call baseline (its activations for every frame at once need GBs)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args(argv)
    args.frames = args.frames or (250 if args.quick else 1000)
    if args.case:
        emit_result(run_case(args.case, args.taesd, args.frames, args.latent, args.chunk))
        return 0
    # Resolved here, not in the children: importing the lookup there would weigh on what they measure.
    from latent_painter.painter.tools.weights import find_or_exit

    found = find_or_exit(args.taesd, families=("taef2",), parts=("decoder",), program="bench_decode_memory")
    args.taesd = str(found.folder)

    cases = [c for c in CASES if not (args.skip_naive_call and c == "naive_call")]
    results = {case: spawn(case, args) for case in cases}
    height, width, _ = results["chunked"]["frame_shape"]
    output = results["chunked"]["output_bytes"]
    one = results["one_chunk"]["peak_bytes"]
    chunk_output = results["one_chunk"]["output_bytes"]
    print(f"{args.frames} frames of {args.latent}x{args.latent} latents -> {height}x{width} px, real taef2 decoder, "
          f"chunks of {args.chunk}; each case in a fresh process, peak = VmHWM - VmRSS after warm-up")
    print(f"output (the IMAGE batch itself): {mib(output).strip()} MiB; one chunk's images: "
          f"{mib(chunk_output).strip()} MiB; one chunk's peak with the decoder's activations: {mib(one).strip()} MiB")
    print(f"\n{'case':<30} {'peak MiB':>9} {'beyond output':>13} {'/ one chunk':>11} {'s (info)':>8}")
    for case in cases:
        r = results[case]
        beyond = r["peak_bytes"] - (r["output_bytes"] if case != "one_chunk" else 0)
        print(f"{LABELS[case]:<30} {mib(r['peak_bytes'])} {mib(beyond):>13} {beyond / one:>10.2f}x {r['seconds']:>8.1f}")
    beyond = results["chunked"]["peak_bytes"] - output
    verdict = "pass" if beyond <= 1.1 * one else "FAIL"
    print(f"\ntarget: chunked peak beyond the output <= one chunk's peak: {beyond / one:.2f}x -> {verdict} "
          f"(10% slack for allocator granularity)")
    for case in ("naive_call", "naive_cat"):
        if case in results:
            naive = results[case]["peak_bytes"] - output
            print(f"{LABELS[case]}: {naive / one:.1f}x one chunk beyond the output "
                  f"({results[case]['peak_bytes'] / results['chunked']['peak_bytes']:.1f}x ours in total peak)")
    per_frame = output / args.frames
    print(f"(torch.cat holds every chunk and then the output: about max(one chunk's peak, the output) beyond the "
          f"output, so it only falls behind past ~{one / per_frame:,.0f} frames at this size; the one-call decode "
          f"grows with every frame. Seconds are for information only: with the mmap threshold every chunk's "
          f"activations are fresh pages, which costs time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
