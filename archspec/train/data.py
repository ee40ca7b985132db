"""Training data: an image folder (one subfolder per class) or synthetic images made on the fly.

Samples are uint8 tensors (C, H, W) at the spec's input size; the training loop normalizes whole
batches on the device. Every random choice of a sample (crop, flip, synthetic noise) comes from a
seed that the sampler derives from (run seed, epoch, index), never from a global generator, so a
sample is the same whatever the number of loader workers, and a resumed run sees exactly the
samples an uninterrupted one would have seen.

Transforms (our own, on Pillow's resampling):
- training: random-resized crop (area 8%..100% of the image by default, aspect 3/4..4/3, as in
  Szegedy et al. 2015, "Going deeper with convolutions") resized to the input size, then a
  horizontal flip with probability 1/2;
- validation: resize so that the input size is 87.5% of the image (224 of 256), center crop.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from .errors import TrainError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pbm")

#: Per-channel mean and std used to normalize inputs (ImageNet statistics, as torchvision and
#: timm use them); one-channel inputs use the mean of the three.
RGB_MEAN, RGB_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GRAY_MEAN, GRAY_STD = (0.449,), (0.226,)

#: Validation: the center crop covers this fraction of the resized image (224 / 256).
CROP_FRACTION = 0.875

_MASK = (1 << 63) - 1


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps): stable across runs and Python versions."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & _MASK


def normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if channels == 3:
        return RGB_MEAN, RGB_STD
    if channels == 1:
        return GRAY_MEAN, GRAY_STD
    return (0.5,) * channels, (0.25,) * channels  # synthetic data only


# ---- the folder ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Folder:
    """An image folder: class names (sorted subfolder names) and (path, class index) samples."""

    root: str
    classes: tuple[str, ...]
    samples: tuple[tuple[str, int], ...]


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def scan(root: str | os.PathLike, option: str = "--data") -> Folder:
    """List the classes and images of ROOT/CLASS/**/IMAGE; a clear error for every wrong layout."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise TrainError(f"{option} {root}: no such folder",
                         "give a folder with one subfolder of images per class, or "
                         "`--data synthetic`")
    if not os.path.isdir(root):
        raise TrainError(f"{option} {root}: not a folder",
                         "give a folder with one subfolder of images per class")
    entries = sorted(os.listdir(root))
    classes = [e for e in entries if not e.startswith(".") and os.path.isdir(os.path.join(root, e))]
    if not classes:
        loose = [e for e in entries if _is_image(e)]
        if loose:
            raise TrainError(
                f"{option} {root}: {len(loose)} image{'s lie' if len(loose) > 1 else ' lies'} "
                f"directly in the folder, and there are no class subfolders",
                f"move the images of each class into its own subfolder: "
                f"{root}/CLASS_NAME/{loose[0]}")
        raise TrainError(f"{option} {root}: the folder is empty (no class subfolders)",
                         "expected ROOT/CLASS_NAME/IMAGE files, e.g. data/cat/1.jpg, "
                         "data/dog/2.jpg")
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for index, name in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, name), followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, f) for f in sorted(filenames) if _is_image(f)]
        if not found:
            empty.append(os.path.join(root, name))
        samples += [(path, index) for path in found]
    if empty:
        listing = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise TrainError(
            f"{option} {root}: {'a class folder has' if len(empty) == 1 else 'class folders have'} "
            f"no images: {listing}",
            f"put images ({', '.join(IMAGE_EXTENSIONS)}) in every class folder, or remove the "
            f"empty ones")
    if len(classes) < 2:
        raise TrainError(f"{option} {root}: only one class ('{classes[0]}'); a classifier needs "
                         f"at least two", "add a subfolder of images for each other class")
    return Folder(root, tuple(classes), tuple(samples))


def match_classes(train: Folder, val: Folder) -> list[tuple[str, int]]:
    """The validation samples relabelled with the training class indices."""
    unknown = [c for c in val.classes if c not in train.classes]
    if unknown:
        raise TrainError(
            f"--val-data {val.root}: classes not in the training data: {', '.join(unknown[:5])}",
            f"the training folder {train.root} has: {', '.join(train.classes[:10])}"
            + (" ..." if len(train.classes) > 10 else ""))
    index = {c: i for i, c in enumerate(train.classes)}
    return [(path, index[val.classes[c]]) for path, c in val.samples]


def split(samples: Sequence[tuple[str, int]], fraction: float, seed: int
          ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Stratified split: `fraction` of each class (rounded, at least one image, never all) goes
    to validation, chosen by a generator seeded from (seed, class); order kept. Deterministic."""
    if fraction <= 0:
        return list(samples), []
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    held: set[int] = set()
    for label, indices in by_class.items():
        if len(indices) < 2:
            continue
        n_val = min(max(1, round(len(indices) * fraction)), len(indices) - 1)
        held.update(random.Random(mix(seed, label, 0x5B117)).sample(indices, n_val))
    train = [s for i, s in enumerate(samples) if i not in held]
    val = [s for i, s in enumerate(samples) if i in held]
    return train, val


# ---- samples ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unreadable:
    """Returned by a dataset in place of a sample it could not decode; the collate function
    passes it through, and the training loop turns it into a clear error (naming the file)."""

    path: str
    reason: str


def collate(batch: list) -> "tuple[torch.Tensor, torch.Tensor] | Unreadable":
    for sample in batch:
        if isinstance(sample, Unreadable):
            return sample
    images = torch.stack([s[0] for s in batch])
    labels = torch.tensor([s[1] for s in batch], dtype=torch.long)
    return images, labels


def crop_box(width: int, height: int, rng: random.Random, out_aspect: float,
             scale: tuple[float, float] = (0.08, 1.0),
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """A random-resized-crop box (left, top, right, bottom): a region of `scale` of the image's
    area with an aspect (relative to the output's) in `ratio`, log-uniform. Ten tries, then the
    largest centered region whose aspect is within the range."""
    area = width * height
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = out_aspect * math.exp(rng.uniform(lo, hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = rng.randint(0, width - w)
            top = rng.randint(0, height - h)
            return left, top, left + w, top + h
    aspect = min(max(width / height, out_aspect * ratio[0]), out_aspect * ratio[1])
    if width / height > aspect:
        w, h = round(height * aspect), height
    else:
        w, h = width, round(width / aspect)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def center_box(width: int, height: int, out_w: int, out_h: int) -> tuple[float, ...]:
    """The source region that `resize so the crop is CROP_FRACTION of the image, center crop`
    keeps: the resize scale makes the image cover (out / CROP_FRACTION) in both directions."""
    scale = max(out_w / CROP_FRACTION / width, out_h / CROP_FRACTION / height)
    w, h = out_w / scale, out_h / scale
    left, top = (width - w) / 2, (height - h) / 2
    return left, top, left + w, top + h


class ImageFiles(Dataset):
    """Decodes images with Pillow; keys are (index, seed) pairs from `SeededSampler`."""

    def __init__(self, samples: Sequence[tuple[str, int]], channels: int, size: tuple[int, int],
                 train: bool, crop_scale: tuple[float, float] = (0.08, 1.0)):
        self.samples = list(samples)
        self.mode = {1: "L", 3: "RGB"}[channels]
        self.channels = channels
        self.height, self.width = size
        self.train = train
        self.crop_scale = crop_scale

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]):
        from PIL import Image
        index, seed = key
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                if img.mode == "P":
                    img = img.convert("RGBA")  # palette transparency, resolved before dropping it
                img = img.convert(self.mode)
                if self.train:
                    rng = random.Random(seed)
                    box = crop_box(img.width, img.height, rng, self.width / self.height,
                                   self.crop_scale)
                    flip = rng.random() < 0.5
                else:
                    box = center_box(img.width, img.height, self.width, self.height)
                    flip = False
                img = img.resize((self.width, self.height), Image.Resampling.BILINEAR,
                                 box=box)
                data = img.tobytes()
        except Exception as exc:  # any decoding failure: report the file, not a worker traceback
            return Unreadable(path, f"{type(exc).__name__}: {exc}")
        x = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        x = x.view(self.height, self.width, self.channels).permute(2, 0, 1).contiguous()
        if flip:
            x = x.flip(-1)
        return x, label


class SyntheticImages(Dataset):
    """Images made on the fly: class k is a fixed smooth colour pattern (a 4x4 grid of random
    colours, seeded by the class, upsampled to the input size) blended half and half with fresh
    noise. Learnable, so loss and accuracy show whether training works, without any files."""

    def __init__(self, length: int, num_classes: int, shape: tuple[int, int, int], seed: int,
                 fixed: bool):
        self.length, self.num_classes, self.shape = length, num_classes, shape
        self.seed = seed  # the class patterns: the same for training and validation
        self.fixed = fixed  # validation: the same noise every epoch (and unlike training's)

    def __len__(self) -> int:
        return self.length

    def _template(self, label: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix(self.seed, label, 0xC1A55))
        c, h, w = self.shape
        grid = torch.rand(1, c, 4, 4, generator=g)
        return torch.nn.functional.interpolate(grid, size=(h, w), mode="bilinear",
                                               align_corners=False)[0]

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        label = index % self.num_classes
        g = torch.Generator().manual_seed(mix(self.seed, index, 0x7E57) if self.fixed else seed)
        noise = torch.rand(self.shape, generator=g)
        x = 0.5 * self._template(label) + 0.5 * noise
        return (x * 255 + 0.5).to(torch.uint8), label  # in [0, 1]: truncation rounds


class SeededSampler(Sampler):
    """Yields (index, seed) keys: the indices of `inner` (e.g. a DistributedSampler, reshuffled
    by `set_epoch`) with a per-sample seed from (run seed, epoch, index)."""

    def __init__(self, inner: "Sampler | Sequence[int]", seed: int):
        self.inner, self.seed, self.epoch = inner, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.inner:
            yield index, mix(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return len(self.inner)
