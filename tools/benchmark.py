#!/usr/bin/env python
"""Benchmark lsdense backbones: parameters, FLOPs (GMACs), latency, throughput.

Example:
    python tools/benchmark.py --models lsnet_t lolvit_s --sizes 224 640 --fused both
    python tools/benchmark.py --models all --json out.json --markdown table.md
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lsdense.benchmark import benchmark, benchmark_ska, format_table, resolve_models, to_json  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["all"], help="variants, families or 'all'")
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 640])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--fused", choices=["yes", "no", "both"], default="yes",
                   help="fused = Conv-BN folded + fast ops; unfused = reference ops")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--ska", action="store_true",
                   help="also time the SKA op alone (unfold reference vs fast path)")
    p.add_argument("--json", type=Path, help="write results as JSON")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown")
    args = p.parse_args(argv)
    fused = {"yes": (True,), "no": (False,), "both": (False, True)}[args.fused]
    try:
        models = resolve_models(args.models)
    except ValueError as err:
        p.error(str(err))
    results = benchmark(models, args.sizes, args.batch, args.threads, args.device, fused,
                        args.warmup, args.repeats)
    table = format_table(results)
    if args.ska:
        ska = benchmark_ska(threads=args.threads, device=args.device)
        table += ("\nSKA on 1x64x80x80 (LSNet-T stage 1 at 640): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ska.items())
                  + f"; speed-up fwd {ska['reference_fwd_ms'] / ska['fast_fwd_ms']:.1f}x, "
                  f"fwd+bwd {ska['reference_fwd_bwd_ms'] / ska['fast_fwd_bwd_ms']:.1f}x\n")
    print(table)
    if args.json:
        args.json.write_text(to_json(results))
    if args.markdown:
        args.markdown.write_text(table)


if __name__ == "__main__":
    main()
