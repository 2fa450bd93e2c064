#!/usr/bin/env python
"""Benchmark lsdense models beside their peers: parameters, GMACs, latency, ratios.

Every lsdense model is timed in one interleaved loop with the timm models a user
would pick instead (``--peers``, default per model: lsdense.benchmark.DEFAULT_PEERS,
timm ``features_only``), and every YOLO YAML (``--yolo``) beside the stock Ultralytics
YAML it swaps a backbone into; the ratio printed is peer time / our time (> 1: ours
is faster). ``--backend`` / ``--dtype`` add paths, each with its max relative error
against fp32 eager of the same model.

Examples:
    python tools/benchmark.py --models lisanet_s hylisanet_s --sizes 224 640
    python tools/benchmark.py --models lsnet_t --peers resnet18 --backend eager onnxruntime \\
        --dtype float32 bfloat16
    python tools/benchmark.py --models none --yolo configs/yolo/yolov8n-lolvit_s.yaml --sizes 640
    python tools/benchmark.py --models all --plot docs/latency_vs_gmacs.png --markdown t.md
"""
import argparse
from pathlib import Path

from lsdense import benchmark as B
from lsdense.cfg import yolo_yaml


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["all"],
                   help="variants, families, 'all', or 'none' (only --yolo)")
    p.add_argument("--peers", nargs="*", default=None,
                   help="timm models timed beside every model (features_only); default: each "
                        "model's own peers; give no names for none; 'official' = LSNet's official "
                        "inference graph (folded, unfold SKA)")
    p.add_argument("--yolo", nargs="*", default=[], help="our Ultralytics YAMLs (stock peer inferred)")
    p.add_argument("--yolo-peer", default=None, help="stock YAML for every --yolo (default: inferred)")
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 640],
                   help="square input sizes in pixels (default: 224 640)")
    p.add_argument("--batch", type=int, default=1, help="images per call (default: 1)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch (and onnxruntime) threads (default: 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--fused", choices=["yes", "no", "both"], default="yes",
                   help="fused = Conv-BN folded + fast ops; unfused = reference ops (ours)")
    p.add_argument("--backend", nargs="+", choices=B.BACKENDS, default=["eager"])
    p.add_argument("--dtype", nargs="+", choices=list(B.DTYPES), default=["float32"])
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed calls of every path first (default: 5)")
    p.add_argument("--repeats", type=int, default=20,
                   help="timed calls of every path, interleaved; medians reported (default: 20)")
    p.add_argument("--ska", action="store_true",
                   help="also time the SKA op alone (unfold reference vs fast path)")
    p.add_argument("--lisa", nargs="*", default=None, metavar="VARIANT",
                   help="also time the LiSA FFT path alone: broadcast form, pattern loop and "
                        "paired form, in "
                        "these variants (default lisanet_s) at the largest --sizes")
    p.add_argument("--train-step", metavar="CONFIG", nargs="?", const="configs/quickstart/retinanet_lsnet_t_toycoco.py",
                   help="also time one mmdet training iteration of CONFIG (default: the RetinaNet-"
                        "LSNet-T quickstart, batch 8 at 256x320), lsdense SKA vs unfold SKA")
    p.add_argument("--json", type=Path, help="write results as JSON")
    p.add_argument("--markdown", type=Path, help="write the table as Markdown")
    p.add_argument("--plot", type=Path, help="write latency vs GMACs (PNG, one panel per size)")
    args = p.parse_args(argv)
    fused = {"yes": (True,), "no": (False,), "both": (False, True)}[args.fused]
    for flag, values, low in (("--sizes", args.sizes, 1), ("--batch", [args.batch], 1),
                              ("--threads", [args.threads], 1), ("--repeats", [args.repeats], 1),
                              ("--warmup", [args.warmup], 0)):
        if min(values) < low:
            p.error(f"{flag} must be at least {low} (got {min(values)})")
    try:
        models = [] if args.models == ["none"] else B.resolve_models(args.models)
    except ValueError as err:
        p.error(f"{err} Or 'none' (with --yolo).")
    if not models and not args.yolo and not (args.ska or args.lisa is not None or args.train_step):
        p.error("nothing to time: name lsdense models with --models (e.g. lsnet_t, lsnet, all), "
                "or YOLO YAMLs with --yolo")
    args.yolo = [yolo_yaml(cfg) for cfg in args.yolo]  # bundled names too (lsdense.cfg)
    for cfg in args.yolo:
        if not Path(cfg).is_file():
            p.error(f"--yolo {cfg}: file not found")
    if "onnxruntime" in args.backend and args.dtype != ["float32"]:
        p.error("--backend onnxruntime runs float32 only; time bfloat16 with eager/compile in "
                "a separate run")
    peers = None if args.peers is None else {m: tuple(args.peers) for m in models}
    yolo_peers = {cfg: args.yolo_peer for cfg in args.yolo} if args.yolo_peer else None
    try:
        results = B.benchmark(models, args.sizes, args.batch, args.threads, args.device, fused,
                              args.warmup, args.repeats, peers=peers, backends=args.backend,
                              dtypes=args.dtype, yolo=args.yolo, yolo_peers=yolo_peers)
    except ValueError as err:  # a peer it cannot time (checked before any work), or a model
        p.error(str(err))      # refusing the input size (e.g. too small), named by the model
    table = B.format_table(results)
    ratio_lines = B.format_ratios(results)
    if args.ska:
        ska = B.benchmark_ska(threads=args.threads, device=args.device)
        table += ("\nSKA on 1x64x80x80 (LSNet-T stage 1 at 640): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in ska.items())
                  + f"; speed-up fwd {ska['reference_fwd_ms'] / ska['fast_fwd_ms']:.1f}x, "
                  f"fwd+bwd {ska['reference_fwd_bwd_ms'] / ska['fast_fwd_bwd_ms']:.1f}x\n")
    for name in ([] if args.lisa is None else (args.lisa or ["lisanet_s"])):
        size = max(args.sizes)
        peer = (args.peers or B.DEFAULT_PEERS.get(name, (None,)))[0] if args.peers != [] else None
        res = B.benchmark_lisa(name, size, args.threads, args.repeats, args.warmup, args.device,
                               peer=peer)
        table += (f"\nLiSA forms in {name} at {size} (fused): reference {res['reference_ms']:.1f} ms, "
                  f"fast {res['fast_ms']:.1f} ms, export {res['export_ms']:.1f} ms; reference / "
                  f"fast {res['reference_ms'] / res['fast_ms']:.2f}x, export / fast "
                  f"{res['export_ms'] / res['fast_ms']:.2f}x "
                  f"(max rel. diff {res['max_rel_err']:.1e}); same network with the LiSA "
                  f"spectral part skipped: {res['without_spectral_ms']:.1f} ms"
                  + (f"; {peer} in the same loop: {res['peer_ms']:.1f} ms" if peer else "") + "\n")
    if args.train_step:
        res = B.benchmark_backbone_train_step(threads=args.threads, repeats=args.repeats,
                                              warmup=args.warmup)
        table += (f"\nLSNet-T backbone training step (batch 8, 256x320, AdamW): lsdense "
                  f"{res['lsdense_ms']:.0f} ms, unfold SKA {res['unfold_ska_ms']:.0f} ms, ratio "
                  f"{res['unfold_ska_ms'] / res['lsdense_ms']:.2f}x\n")
        try:
            res = B.benchmark_train_step(args.train_step, threads=args.threads,
                                         repeats=args.repeats, warmup=args.warmup)
        except ImportError as err:
            table += f"\nDetector training iteration not timed: {err} (install lsdense[mmdet])\n"
            res = None
    if args.train_step and res is not None:
        table += (f"\nTraining iteration ({Path(args.train_step).name}, batch 8, 256x320): "
                  f"lsdense {res['lsdense_ms']:.0f} ms, unfold SKA {res['unfold_ska_ms']:.0f} ms, "
                  f"ratio {res['unfold_ska_ms'] / res['lsdense_ms']:.2f}x (first losses "
                  f"{res['first_loss_lsdense']:.4f} / {res['first_loss_unfold_ska']:.4f})\n")
    print(table)
    print("Ratios (other time / our time; > 1: ours faster):")
    print(ratio_lines)
    if args.json:
        args.json.write_text(B.to_json(results))
    if args.markdown:
        args.markdown.write_text(table + "\n" + ratio_lines + "\n")
    if args.plot:
        print(f"plot: {B.plot(results, args.plot)}")


if __name__ == "__main__":
    main()
