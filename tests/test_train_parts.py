"""The pieces of `archspec train`: schedule, parameter groups, split, crops, samplers."""
from __future__ import annotations

import math
import random
from collections import Counter

import pytest
import torch

import archspec
from archspec.train import checkpoint
from archspec.train.data import (ImageFiles, SeededSampler, center_box, crop_box, scan, split)
from archspec.train.recipe import lr_factor, make_optimizer, parameter_groups
from train_util import TINY_SPEC, make_shapes


# ---- schedule -----------------------------------------------------------------------------

def test_warmup_is_linear_up_to_the_peak():
    assert [lr_factor(s, 4, 20) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_cosine_after_warmup():
    # Loshchilov & Hutter: 0.5 (1 + cos(pi t / T)) over the T steps after warm-up.
    assert lr_factor(4, 4, 20) == pytest.approx(1.0)
    assert lr_factor(12, 4, 20) == pytest.approx(0.5)  # halfway through the 16 cosine steps
    assert lr_factor(8, 4, 20) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)
    assert lr_factor(0, 0, 10) == pytest.approx(1.0)  # no warm-up: start at the peak


# ---- no bias decay ------------------------------------------------------------------------

def test_weight_decay_only_on_conv_and_linear_weights():
    graph = archspec.resolve(TINY_SPEC)
    model = archspec.build(graph)
    groups = parameter_groups(model, graph, bias_decay=False)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in groups.decay}
    not_decayed = {names[id(p)] for p in groups.no_decay}
    # Witness independent of the IR: conv weights are 4-d, the classifier's 2-d; norm scales,
    # shifts and biases are 1-d.
    assert decayed == {n for n, p in model.named_parameters() if p.ndim >= 2}
    assert not_decayed == {n for n, p in model.named_parameters() if p.ndim == 1}
    assert "head.fc.bias" in not_decayed and "stem.norm1.weight" in not_decayed
    opt = make_optimizer("sgd", groups, 0.1, 1e-4, 0.9)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]
    everything = parameter_groups(model, graph, bias_decay=True)
    assert len(everything.decay) == len(list(model.parameters())) and not everything.no_decay


# ---- data ---------------------------------------------------------------------------------

def test_split_is_stratified_deterministic_and_disjoint():
    samples = [(f"{c}/{i}.png", c) for c in range(3) for i in range(10 * (c + 1))]
    train, val = split(samples, 0.2, seed=7)
    assert split(samples, 0.2, seed=7) == (train, val)
    assert sorted(train + val) == sorted(samples) and not set(train) & set(val)
    assert Counter(label for _, label in val) == {0: 2, 1: 4, 2: 6}  # 20% of 10, 20, 30
    assert split(samples, 0.2, seed=8)[1] != val
    assert split(samples, 0.0, seed=7) == (samples, [])


def test_random_resized_crop_boxes_stay_in_range():
    rng = random.Random(0)
    for _ in range(2000):
        w, h = rng.randint(8, 300), rng.randint(8, 300)
        left, top, right, bottom = crop_box(w, h, rng, 1.0, (0.08, 1.0))
        assert 0 <= left < right <= w and 0 <= top < bottom <= h
        cw, ch = right - left, bottom - top
        # aspect in [3/4, 4/3], up to the rounding of each side to whole pixels
        assert (cw + 0.5) / (ch - 0.5) >= 3 / 4 and (cw - 0.5) / (ch + 0.5) <= 4 / 3
    # A square image gets square-ish crops covering 8%..100% of its area.
    areas = [(lambda b: (b[2] - b[0]) * (b[3] - b[1]))(crop_box(200, 200, rng, 1.0))
             for _ in range(500)]
    assert 0.07 * 200 * 200 <= min(areas) and max(areas) <= 200 * 200


def test_center_crop_is_the_imagenet_evaluation_crop():
    # Standard ImageNet evaluation: resize to 256, center crop 224 -> pixels 16..240.
    assert center_box(256, 256, 224, 224) == pytest.approx((16, 16, 240, 240))
    # A wide image: the shorter side decides the scale; the crop is centered.
    left, top, right, bottom = center_box(512, 256, 224, 224)
    assert (top, bottom) == pytest.approx((16, 240)) and (left + right) / 2 == 256


def test_image_samples_are_reproducible_from_their_seed(tmp_path):
    data = make_shapes(tmp_path, per_class=2, size=40)
    folder = scan(data)
    train = ImageFiles(folder.samples, 3, (32, 32), train=True, crop_scale=(0.35, 1.0))
    a, label = train[(0, 123)]
    assert a.shape == (3, 32, 32) and a.dtype == torch.uint8 and label == 0
    assert torch.equal(train[(0, 123)][0], a)
    assert not all(torch.equal(train[(0, s)][0], a) for s in range(124, 130))
    val = ImageFiles(folder.samples, 1, (24, 32), train=False)
    x, _ = val[(5, 0)]
    assert x.shape == (1, 24, 32) and torch.equal(val[(5, 99)][0], x)  # no randomness


def test_scan_ignores_hidden_and_other_files(tmp_path):
    data = make_shapes(tmp_path, per_class=3)
    (data / ".cache").mkdir()
    (data / "circle" / "notes.txt").write_text("x")
    (data / "circle" / ".hidden.png").write_bytes(b"x")
    (data / "square" / "more").mkdir()
    (data / "square" / "000.png").rename(data / "square" / "more" / "000.png")
    folder = scan(data)
    assert folder.classes == ("circle", "cross", "square", "triangle")
    assert Counter(label for _, label in folder.samples) == {0: 3, 1: 3, 2: 3, 3: 3}


def test_seeded_sampler_reshuffles_per_epoch_and_repeats_per_seed():
    inner = torch.utils.data.DistributedSampler(range(20), 1, 0, shuffle=True, seed=5)
    sampler = SeededSampler(inner, seed=5)
    sampler.set_epoch(1)
    first = list(sampler)
    sampler.set_epoch(2)
    second = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) == first and second != first
    assert sorted(i for i, _ in first) == list(range(20))


def test_spec_differences_ignore_the_description():
    a = archspec.load(TINY_SPEC).model_dump(mode="json")
    b = archspec.load(TINY_SPEC, ["description=changed", "stages.depths=[1,2]"]).model_dump(
        mode="json")
    assert checkpoint.spec_differences(a, b) == ["stages.depths: checkpoint [1, 1], now [1, 2]"]
    assert checkpoint.spec_differences(a, a) == []


def test_help_lists_the_options(capsys):
    from archspec.cli import main
    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--data", "--val-data", "--val-split", "--epochs", "--batch-size", "--lr",
                   "--optimizer", "--weight-decay", "--warmup-epochs", "--label-smoothing",
                   "--amp", "--channels-last", "--compile", "--out", "--resume", "--seed",
                   "--workers", "--set", "--overwrite", "--scale-lr"):
        assert option in text
