"""Every weights format the Hugging Face hub serves for timm models, through lsdense's loader
and each place that uses it (create_backbone(pretrained=), mm init_cfg, the YOLO row's
pretrained), with files written here by the formats' own writers (issue 18)."""
import json

import pytest
import torch
from safetensors.torch import save_file

from lsdense.models import create_backbone, load_checkpoint
from lsdense.models.checkpoint import check_checkpoint_file, read_checkpoint


@pytest.fixture(scope="module")
def weights():
    """A dense LSNet-T state dict with non-default values everywhere."""
    torch.manual_seed(0)
    sd = create_backbone("lsnet_t").state_dict()
    return {k: (v + torch.randn_like(v) * 0.1 if v.is_floating_point() else v).contiguous()
            for k, v in sd.items()}


def _shard(sd, folder, stem, save):
    """Two shards and the transformers-style index (``weight_map``) beside them."""
    keys = sorted(sd)
    names = [f"{stem}-0000{i}-of-00002" for i in (1, 2)]
    ext = ".safetensors" if save is save_file else ".bin"
    parts = (keys[: len(keys) // 2], keys[len(keys) // 2:])
    for name, part in zip(names, parts):
        save({k: sd[k] for k in part}, str(folder / (name + ext)))
    index = folder / f"{stem}{ext}.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": {
        k: names[0 if k in parts[0] else 1] + ext for k in keys}}))
    return index


def _torch_save(obj, path):
    torch.save(obj, path)


FORMATS = {
    "model.safetensors": lambda sd, d: (save_file(sd, str(d / "model.safetensors")),
                                        d / "model.safetensors")[1],
    # torch.compile'd DDP model saved by a training script: _orig_mod. + module. prefixes
    "prefixed.safetensors": lambda sd, d: (save_file(
        {"_orig_mod.module." + k: v for k, v in sd.items()}, str(d / "p.safetensors")),
        d / "p.safetensors")[1],
    "safetensors named .pth": lambda sd, d: (save_file(sd, str(d / "w.pth")), d / "w.pth")[1],
    "pytorch_model.bin": lambda sd, d: (_torch_save(sd, d / "pytorch_model.bin"),
                                        d / "pytorch_model.bin")[1],
    # timm train.py's checkpoint: {'state_dict', 'state_dict_ema', 'epoch', ...}
    "timm train.py .pth.tar": lambda sd, d: (_torch_save(
        {"epoch": 3, "arch": "lsnet_t", "state_dict": {"module." + k: v for k, v in sd.items()},
         "state_dict_ema": sd}, d / "checkpoint-3.pth.tar"), d / "checkpoint-3.pth.tar")[1],
    "sharded safetensors index": lambda sd, d: _shard(sd, d, "model", save_file),
    "sharded bin index": lambda sd, d: _shard(sd, d, "pytorch_model", _torch_save),
    "hub model folder": lambda sd, d: (save_file(sd, str(d / "model.safetensors")),
                                       (d / "config.json").write_text("{}"), d)[2],
}


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_loads_every_tensor(kind, weights, tmp_path):
    path = FORMATS[kind](weights, tmp_path)
    model = create_backbone("lsnet_t")
    result = load_checkpoint(model, path, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in model.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_safetensors_through_every_user_of_the_loader(weights, tmp_path, monkeypatch):
    """create_backbone(pretrained=), mm init_cfg Pretrained (path and a cached hub URL), the
    YOLO row's pretrained."""
    path = FORMATS["model.safetensors"](weights, tmp_path)
    model = create_backbone("lsnet_t", pretrained=path)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())

    from lsdense.mm.backbones import LSNetBackbone

    url = "https://huggingface.co/someone/lsnet_t/resolve/main/model.safetensors"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # torch.hub.set_dir
    from lsdense.models.checkpoint import url_cache_path

    cached = url_cache_path(url)  # the URL's file already in torch.hub's cache: no download
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    for checkpoint in (str(path), url):
        mm = LSNetBackbone(arch="t", init_cfg=dict(type="Pretrained", checkpoint=checkpoint))
        mm.init_weights()
        assert all(torch.equal(v, weights[k]) for k, v in mm.state_dict().items())

    from lsdense.yolo.modules import LSNetBackbone as YoloLSNet

    row = YoloLSNet("t", pretrained=str(path))
    assert all(torch.equal(v, weights[k]) for k, v in row.body.state_dict().items())


def test_broken_files_get_one_line_naming_the_fix(weights, tmp_path):
    good = FORMATS["model.safetensors"](weights, tmp_path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut.safetensors is not a readable safetensors file"):
        read_checkpoint(cut)
    index = _shard(weights, tmp_path, "model", save_file)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"names shards that are not beside it: "
                                                r"model-00002-of-00002.safetensors\. Download"):
        read_checkpoint(index)
    empty_folder = tmp_path / "folder"
    empty_folder.mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder is a folder without a weights file; "
                                                r"expected one of model.safetensors, "):
        read_checkpoint(empty_folder)
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(ValueError, match=r"notes.txt is not a PyTorch checkpoint nor another "
                                         r"weights format lsdense reads .* it reads: torch.save"):
        read_checkpoint(text)
    # mmengine's load_from / --checkpoint reads torch.save files only: said before it starts
    with pytest.raises(ValueError, match=r"good.safetensors is a safetensors checkpoint, which "
                                         r"mmengine's loader \(load_from, --checkpoint\) does not "
                                         r"read; load backbone weights with init_cfg="):
        check_checkpoint_file(good.rename(tmp_path / "good.safetensors"))
