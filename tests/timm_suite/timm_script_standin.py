"""A stand-in for timm's ``validate.py`` / ``benchmark.py`` (repository scripts, not in the
timm wheel, so not available to the tests): what they do with a model, through timm's
public API only, run by ``tools/timm_run.py`` in a subprocess (tests/test_timm_interop.py).

Like ``validate.py``: the model from ``create_model(**resolve_model_input_args(...))``
with its arguments, weights by timm's ``load_checkpoint`` (``--checkpoint``, any format
timm reads), data config by ``resolve_input_data_config``, an ImageFolder through
``create_dataset`` / ``create_loader``. Writes the top-1 class of every image, in the
dataset's order, to ``--out`` (JSON).
"""
import argparse
import json

import torch
from timm.data import create_dataset, create_loader, resolve_input_data_config
from timm.models import create_model, load_checkpoint, resolve_model_input_args

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--checkpoint", default="")
parser.add_argument("--data-dir", required=True)
parser.add_argument("--img-size", type=int, default=None)
parser.add_argument("--in-chans", type=int, default=None)
parser.add_argument("--input-size", default=None, nargs=3, type=int)
parser.add_argument("--num-classes", type=int, default=None)
parser.add_argument("--gp", default=None)
parser.add_argument("--out", required=True)

if __name__ == "__main__":
    args = parser.parse_args()
    model = create_model(**resolve_model_input_args(  # validate.py's call (timm 1.0.31)
        args.model, vars(args), pretrained=False, num_classes=args.num_classes,
        global_pool=args.gp, scriptable=False))
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, use_ema=False)
    config = resolve_input_data_config(model, vars(args), use_test_size=True)
    model.eval()
    dataset = create_dataset(root=args.data_dir, name="", split="validation")
    loader = create_loader(dataset, input_size=config["input_size"], batch_size=2,
                           use_prefetcher=False, interpolation=config["interpolation"],
                           mean=config["mean"], std=config["std"], num_workers=0,
                           crop_pct=config["crop_pct"], crop_mode=config["crop_mode"])
    preds = []
    with torch.no_grad():
        for images, _ in loader:
            preds += model(images).argmax(-1).tolist()
    with open(args.out, "w") as f:
        json.dump({"preds": preds, "input_size": list(config["input_size"])}, f)
