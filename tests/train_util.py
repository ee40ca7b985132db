"""Helpers of the training tests: a small image task made here, and the tiny test spec."""
from __future__ import annotations

import contextlib
import io
import json
import pathlib
import random

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
ROOT = TESTS.parent
#: A two-stage basic-block net at 32x32 with 16 and 32 channels (about 20k parameters).
TINY_SPEC = str(TESTS / "data" / "tiny_basic.yaml")

#: class name -> (shape, base colour). Each image: one shape of its class, jittered colour,
#: random size and place, on a random dark background.
SHAPES = {"circle": (220, 50, 50), "square": (50, 190, 50), "triangle": (60, 80, 230),
          "cross": (230, 200, 40)}


def make_shapes(root: pathlib.Path, per_class: int = 60, size: int = 40, seed: int = 0
                ) -> pathlib.Path:
    """Write ROOT/CLASS/NNN.png files (Pillow) and return ROOT."""
    from PIL import Image, ImageDraw
    rng = random.Random(seed)
    for name, colour in SHAPES.items():
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            background = tuple(rng.randint(0, 80) for _ in range(3))
            img = Image.new("RGB", (size, size), background)
            draw = ImageDraw.Draw(img)
            r = rng.randint(size // 5, size // 3)
            cx, cy = rng.randint(r, size - r), rng.randint(r, size - r)
            fill = tuple(max(0, min(255, c + rng.randint(-30, 30))) for c in colour)
            if name == "circle":
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
            elif name == "square":
                draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
            elif name == "triangle":
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
            else:
                w = max(2, r // 3)
                draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
                draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
            img.save(folder / f"{i:03d}.png")
    return root


def metrics(out: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: a 20k-parameter net gains nothing from more, and on a busy 2-core
    machine spinning OpenMP threads make it many times slower. (Import it into a test module
    to apply it there.)"""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(*args: str) -> tuple[int, str, str]:
    """`archspec train ARGS` in this process: (exit code, stdout, stderr). On the CPU unless
    ARGS name a --device, so that the suite means the same on a machine with a GPU."""
    from archspec.cli import main
    if "--device" not in args:
        args = (*args, "--device", "cpu")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *args])
    return code, out.getvalue(), err.getvalue()
