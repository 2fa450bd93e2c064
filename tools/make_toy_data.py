"""Write small procedural datasets in the real on-disk layouts (deterministic from --seed).

    python tools/make_toy_data.py coco    --out data/toy/coco
    python tools/make_toy_data.py voc     --out data/toy/VOCdevkit
    python tools/make_toy_data.py ade20k  --out data/toy/ADEChallengeData2016
    python tools/make_toy_data.py bdd100k --out data/toy/bdd100k
    python tools/make_toy_data.py all     --out data/toy        (each under its default name)

``--out`` is the ``data_root`` a config reads (the quickstart configs use the
paths above). ``--num-train`` / ``--num-val`` set the split sizes. A folder that already
holds files is refused (toy files would replace a real dataset's annotations).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

# kind -> (folder under `all`'s --out, default train / val images)
KINDS = {"coco": ("coco", 400, 60), "voc": ("VOCdevkit", 400, 60),
         "ade20k": ("ADEChallengeData2016", 300, 50), "bdd100k": ("bdd100k", 16, 8)}


def make(kind: str, out: str, num_train: Optional[int] = None, num_val: Optional[int] = None,
         seed: int = 0) -> str:
    """Write one toy dataset of ``kind`` at ``out``; return ``out``."""
    from lsdense.toydata import ade, coco, voc

    _, n_train, n_val = KINDS[kind]
    n_train = n_train if num_train is None else num_train
    n_val = n_val if num_val is None else num_val
    if kind == "bdd100k":
        from lsdense.toydata.bdd import make_bdd100k

        make_bdd100k(out, num_train=n_train, num_val=n_val, seed=seed)
    else:
        writer = {"coco": coco.make_coco, "voc": voc.make_voc, "ade20k": ade.make_ade20k}[kind]
        writer(out, num_train=n_train, num_val=n_val, seed=seed)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Write toy datasets in real dataset layouts.")
    p.add_argument("kind", choices=[*KINDS, "all"])
    p.add_argument("--out", required=True, help="the dataset's data_root (for 'all': the parent)")
    p.add_argument("--num-train", type=int, default=None)
    p.add_argument("--num-val", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    kinds = list(KINDS) if args.kind == "all" else [args.kind]
    outs = {k: osp.join(args.out, KINDS[k][0]) if args.kind == "all" else args.out for k in kinds}
    full = [o for o in outs.values() if osp.isdir(o) and os.listdir(o)]
    if full:
        p.error(f"--out {full[0]} already holds files: toy data would be written over them (a "
                f"real dataset's annotation files included). Give a new or empty folder.")
    for kind, out in outs.items():
        make(kind, out, args.num_train, args.num_val, args.seed)
        print(f"toy {kind} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
