"""Pretrained weights without downloads (docs/weights.md).

Synthetic checkpoints come from the reference manifests (../shared/reference/state_dict_keys/:
timm 1.0.31's ordered state-dict keys and shapes of each model; for ResNet-family models also
torchvision's): every tensor a distinct constant, so after a strict load each archspec tensor
tells which checkpoint tensor it received. The oracle is the manifest itself: every tensor used
once, the tensor names agreeing (`weight` on `weight`, `running_var` on `running_var`), and the
modules received in the manifest's own order (timm registers modules in forward order), which
catches two same-shaped layers swapped.
"""
from __future__ import annotations

import json
import os
import pathlib

import pytest
import torch

import archspec
from archspec.weights import WeightsError, export_state_dict
from conftest import REFERENCE_DIR, SPEC_DIR


REFERENCE = REFERENCE_DIR
needs_reference = pytest.mark.skipif(REFERENCE is None, reason="../shared/reference not found")
MANIFESTS = sorted((REFERENCE / "state_dict_keys").glob("*.json")) if REFERENCE else []
ZOO_MANIFESTS = [m for m in MANIFESTS if (SPEC_DIR / f"{m.stem}.yaml").exists()]


def manifest(name: str) -> list[tuple[str, tuple[int, ...]]]:
    data = json.loads((REFERENCE / "state_dict_keys" / f"{name}.json").read_text())
    return [(key, tuple(shape)) for key, shape in data["keys"]]


def constants(keys: list[tuple[str, tuple[int, ...]]]) -> dict[str, torch.Tensor]:
    """Tensor i holds the value i + 1 everywhere (an expanded scalar: no memory per element)."""
    out = {}
    for i, (key, shape) in enumerate(keys):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        out[key] = torch.tensor(i + 1, dtype=dtype).expand(shape)
    return out


def received(model: torch.nn.Module) -> dict[str, int]:
    """archspec key -> index of the checkpoint tensor it holds (each must be one constant)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked") and value.item() == 0:
            continue  # kept its own counter (allowed to be absent from a checkpoint)
        flat = value.flatten()
        assert bool((flat == flat[0]).all()), f"{key} holds a mix of checkpoint tensors"
        out[key] = int(flat[0].item()) - 1
    return out


def check_landing(model: torch.nn.Module, keys: list[tuple[str, tuple[int, ...]]]) -> None:
    got = received(model)
    assert sorted(got.values()) == list(range(len(keys))), "each checkpoint tensor used once"
    for mine, index in got.items():
        theirs = keys[index][0]
        mine_name, theirs_name = mine.rpartition(".")[2], theirs.rpartition(".")[2]
        if (mine_name, theirs_name) != ("gamma", "layer_scale"):  # torchvision's name
            assert mine_name == theirs_name, (mine, theirs)
    # modules arrive in the manifest's order; a layer scale (timm registers it first in its
    # block, torchvision last) is left out of the comparison
    order = [keys[i][0].rpartition(".")[0] for k, i in got.items()
             if not k.endswith("layer_scale.gamma")]
    firsts = list(dict.fromkeys(order))
    positions = {m: min(i for i, (k, _) in enumerate(keys) if k.rpartition(".")[0] == m)
                 for m in firsts}
    assert [positions[m] for m in firsts] == sorted(positions[m] for m in firsts)


#: building the module dominates these tests (about 0.1 s per million parameters on 2 cores):
#: bigger specs run in the slow step
SLOW_PARAMS = 30_000_000


def bare(name: str, **overrides) -> torch.nn.Module:
    """The zoo module with storage but no initialisation (a strict load fills every tensor)."""
    with torch.device("meta"):
        model = archspec.build(SPEC_DIR / f"{name}.yaml", **overrides)
    return model.to_empty(device="cpu")


def _param(m: pathlib.Path):
    big = archspec.resolve(SPEC_DIR / f"{m.stem}.yaml").params > SLOW_PARAMS
    return pytest.param(m.stem, id=m.stem, marks=[pytest.mark.slow] if big else [])


@needs_reference
@pytest.mark.parametrize("name", [_param(m) for m in ZOO_MANIFESTS])
def test_zoo_spec_loads_its_timm_checkpoint_strictly(name):
    keys = manifest(name)
    model = bare(name)
    report = archspec.load_weights(model, constants(keys))  # source auto, strict
    assert report.layout == "timm" and report.complete
    check_landing(model, keys)


@needs_reference
def test_every_zoo_spec_with_a_manifest_is_covered():
    names = {m.stem for m in ZOO_MANIFESTS}
    assert len(names) >= 20 and {"resnet50", "convnext_tiny", "mobilenetv2_100",
                                 "resnest50d", "seresnet50"} <= names


@needs_reference
def test_original_senet_names_load_into_the_v1_layout_spec():
    """seresnet50_v1 is the original SENet release, whose weights timm names legacy_seresnet50
    (layer0, se_module, last_linear)."""
    keys = manifest("legacy_seresnet50")
    model = bare("seresnet50_v1")
    report = archspec.load_weights(model, constants(keys), source="timm")
    assert report.layout == "timm_legacy"
    check_landing(model, keys)


@needs_reference
def test_a_spec_with_other_depths_maps_by_the_same_rules():
    """resnet50 with depths (2, 3, 4, 2): the resnet50 checkpoint minus the blocks it lacks."""
    depths = [2, 3, 4, 2]
    keys = [(k, s) for k, s in manifest("resnet50")
            if not (k.startswith("layer") and int(k.split(".")[1]) >= depths[int(k[5]) - 1])]
    model = bare("resnet50", stages__depths=depths)
    archspec.load_weights(model, constants(keys))
    check_landing(model, keys)


@needs_reference
def test_resnet_torchvision_names_are_timm_names():
    keys = manifest("resnet50")
    model = bare("resnet50")
    assert archspec.load_weights(model, constants(keys), source="torchvision").complete
    check_landing(model, keys)


#: torchvision module paths and shapes from its source (models/convnext.py, mobilenetv2.py):
#: `features` = [stem, stage, downsampling, stage, ...]; CNBlock.block = dwconv 0, permute 1,
#: LayerNorm 2, Linear 3, GELU 4, Linear 5 and a (C, 1, 1) layer_scale; MobileNetV2 blocks are
#: features 1-17, each `conv` = [Conv2dNormActivation per activated conv, 1x1 conv, BN].
TORCHVISION_FACTS = {
    "convnext_tiny": {"features.0.0.weight": (96, 3, 4, 4), "features.1.0.layer_scale": (96, 1, 1),
                      "features.1.2.block.3.weight": (384, 96), "features.2.0.weight": (96,),
                      "features.2.1.weight": (192, 96, 2, 2),
                      "features.7.2.block.5.weight": (768, 3072),
                      "classifier.0.weight": (768,), "classifier.2.weight": (1000, 768)},
    "mobilenetv2_100": {"features.0.1.running_var": (32,), "features.1.conv.0.0.weight":
                        (32, 1, 3, 3), "features.1.conv.1.weight": (16, 32, 1, 1),
                        "features.1.conv.2.weight": (16,), "features.2.conv.0.0.weight":
                        (96, 16, 1, 1), "features.17.conv.2.weight": (320, 960, 1, 1),
                        "features.17.conv.3.bias": (320,), "features.18.0.weight":
                        (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_FACTS))
def test_torchvision_layouts_of_convnext_and_mobilenetv2(name):
    model = bare(name)
    keys = [(k, tuple(v.shape)) for k, v in export_state_dict(model, "torchvision").items()]
    assert len(dict(keys)) == len(keys)  # one torchvision tensor per archspec tensor
    for key, shape in TORCHVISION_FACTS[name].items():
        assert dict(keys).get(key) == shape, key
    report = archspec.load_weights(model, constants(keys))  # auto: recognised as torchvision
    assert report.layout == "torchvision" and report.complete
    assert received(model) == {k: i for i, k in enumerate(model.state_dict())}


@needs_reference
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_round_trip_timm_to_archspec_save_load_model(tmp_path, suffix):
    torch.manual_seed(0)
    timm_file = tmp_path / "resnet18_timm.pth"
    torch.save({k: torch.rand(s) + 0.5 if k.endswith("running_var") else
                torch.randn(s) if s else torch.tensor(3) for k, s in manifest("resnet18")},
               timm_file)
    model = archspec.build(SPEC_DIR / "resnet18.yaml", weights=timm_file).eval()
    archspec.save(model, tmp_path / f"mine{suffix}")
    again = archspec.load_model(tmp_path / f"mine{suffix}").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert again.spec_data == model.spec_data


@needs_reference
def test_strict_error_lists_at_most_20_per_kind_and_suggests_strict_false():
    model = archspec.build(SPEC_DIR / "resnet101.yaml", head__num_classes=10)
    with pytest.raises(WeightsError) as err:
        archspec.load_weights(model, constants(manifest("resnet50")))
    text = str(err.value)
    assert "archspec tensors the checkpoint lacks" in text and "strict=False" in text
    assert "head.fc.weight <- fc.weight: (1000, 2048) in the checkpoint, (10, 2048) here" in text
    section = text.split("archspec tensors the checkpoint lacks")[1].split("shapes")[0]
    listed = sum(len(line.split(":", 1)[1].split(",")) for line in section.splitlines()[1:]
                 if line.startswith("    ") and not line.strip().startswith("..."))
    assert listed == 20 and "... and" in section


@needs_reference
def test_non_strict_loads_a_modified_network_and_resets_the_classifier():
    """resnet50d's weights into a resnet50-D with 10 classes and a deeper stage 3."""
    keys = manifest("resnet50d")
    model = archspec.build(SPEC_DIR / "resnet50d.yaml", head__num_classes=10,
                           stages__depths=[3, 4, 8, 3])
    fc_before = model.head.fc.weight.clone()
    report = archspec.load_weights(model, constants(keys), strict=False)
    assert {k for k, _ in report.skipped} == {"fc.weight", "fc.bias"}
    assert all("classifier" in why for _, why in report.skipped)
    new_blocks = {k.rpartition(".")[0].split(".norm")[0].split(".conv")[0]
                  for k in report.initialised if k.startswith("stages.2.blocks.")}
    assert new_blocks == {"stages.2.blocks.6", "stages.2.blocks.7"}
    assert torch.equal(model.head.fc.weight, fc_before)
    assert len(report.loaded) == len(keys) - 2
    table = report.table()
    assert "loaded" in table and "skipped" in table and "initialised" in table


# ---- files that are not what they should be -------------------------------------------------

def _resnet18_file(tmp_path) -> pathlib.Path:
    path = tmp_path / "resnet18.safetensors"
    archspec.save(archspec.build(SPEC_DIR / "resnet18.yaml"), path)
    return path


def test_truncated_and_non_checkpoint_files_are_clear_errors(tmp_path):
    pt = tmp_path / "cut.pt"
    torch.save(archspec.build(SPEC_DIR / "resnet18.yaml").state_dict(), pt)
    pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    st = _resnet18_file(tmp_path)
    st.write_bytes(st.read_bytes()[:1000])
    text = tmp_path / "notes.pth"
    text.write_text("not weights\n")
    model = archspec.build(SPEC_DIR / "resnet18.yaml")
    for path, expected in ((pt, "cut short"), (st, "not a readable safetensors file"),
                           (text, "cannot read the checkpoint"), (tmp_path / "absent.pt",
                                                                  "no such file")):
        with pytest.raises(WeightsError, match=expected):
            archspec.load_weights(model, path)


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload(str(marker))}, path)
    with pytest.raises(WeightsError, match="refused by weights_only loading"):
        archspec.load_weights(archspec.build(SPEC_DIR / "resnet18.yaml"), path)
    assert not marker.exists()


def test_a_checkpoint_of_another_network(tmp_path):
    path = _resnet18_file(tmp_path)
    n = len(archspec.build(SPEC_DIR / "resnet18.yaml").state_dict())
    with pytest.raises(WeightsError) as err:
        archspec.load_weights(archspec.build(SPEC_DIR / "convnext_atto.yaml"), path)
    assert f"a checkpoint of another network: only 1 of its {n} tensors have a place in " \
        "convnext_atto" in str(err.value)  # head.fc.bias: 1000 classes in both
    assert "written for spec 'resnet18', this module is 'convnext_atto'" in str(err.value)
    renamed = {f"layer9.{k}": v for k, v in archspec.build(SPEC_DIR / "resnet18.yaml")
               .state_dict().items()}
    with pytest.raises(WeightsError, match=f"none of its {n} tensors is a tensor of resnet18"):
        archspec.load_weights(archspec.build(SPEC_DIR / "resnet18.yaml"), renamed)


def test_another_spec_says_which_settings_differ(tmp_path):
    path = _resnet18_file(tmp_path)
    with pytest.raises(WeightsError) as err:
        archspec.load_weights(archspec.build(SPEC_DIR / "resnet34.yaml"), path)
    assert "written for spec 'resnet18', this module is 'resnet34'" in str(err.value)
    assert "stages.depths: [2,2,2,2] -> [3,4,6,3]" in str(err.value)


def test_an_altered_embedded_spec_is_noticed(tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    path = _resnet18_file(tmp_path)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta["spec_yaml"] = meta["spec_yaml"].replace("depths:\n  - 2", "depths:\n  - 3", 1)
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(WeightsError, match="does not match its spec_sha256"):
        archspec.load_model(path)


def test_load_model_needs_an_embedded_spec(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save(archspec.build(SPEC_DIR / "resnet18.yaml").state_dict(), path)
    with pytest.raises(WeightsError, match="carries no archspec spec"):
        archspec.load_model(path)


def test_self_describing_contents(tmp_path):
    import hashlib
    import yaml
    from safetensors import safe_open
    path = _resnet18_file(tmp_path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "archspec.weights/1"
    assert hashlib.sha256(meta["spec_yaml"].encode()).hexdigest() == meta["spec_sha256"]
    assert yaml.safe_load(meta["spec_yaml"])["stages"]["depths"] == [2, 2, 2, 2]
    assert meta["archspec_version"]


# ---- command line ---------------------------------------------------------------------------

def test_cli_convert_writes_once_and_refuses_to_overwrite(tmp_path, capsys):
    from archspec.cli import main
    source = tmp_path / "plain.pth"  # a bare archspec-named state dict
    torch.save(archspec.build(SPEC_DIR / "resnet18.yaml").state_dict(), source)
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(SPEC_DIR / "resnet18.yaml"), str(source), "-o", str(out)]) == 0
    assert "loaded" in capsys.readouterr().out
    first = out.read_bytes()
    assert main(["convert", str(SPEC_DIR / "resnet18.yaml"), str(source), "-o", str(out)]) == 2
    assert "already exists; not overwritten" in capsys.readouterr().err
    assert out.read_bytes() == first
    assert main(["convert", str(SPEC_DIR / "resnet18.yaml"), str(source), "-o", str(out),
                 "--overwrite"]) == 0
    assert archspec.load_model(out).spec_name == "resnet18"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_cli_bad_files_exit_2_without_a_traceback(tmp_path, capsys):
    from archspec.cli import main
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload(str(tmp_path / "ran"))}, evil)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(_resnet18_file(tmp_path).read_bytes()[:500])
    other = _resnet18_file(tmp_path)
    for spec, path in (("resnet18", evil), ("resnet18", cut), ("convnext_atto", other)):
        code = main(["build", str(SPEC_DIR / f"{spec}.yaml"), "--weights", str(path)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and f"{path}: weights: " in err, err
    assert not (tmp_path / "ran").exists()


def test_train_checkpoints_rebuild_with_load_model(tmp_path):
    from archspec.train import TrainConfig, train
    from train_util import TINY_SPEC
    torch.set_num_threads(1)
    train(TrainConfig(spec=TINY_SPEC, data="synthetic", epochs=1, batch_size=8,
                      synthetic_samples=16, out=str(tmp_path / "run"), progress=False,
                      device="cpu", workers=0))
    for name in ("last.pt", "best.pt"):
        model = archspec.load_model(tmp_path / "run" / name)
        saved = torch.load(tmp_path / "run" / name, weights_only=True)["model"]
        assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
        assert model.spec_name == archspec.load(TINY_SPEC).name
