"""Training a spec: `archspec train` (see docs/training.md).

    >>> from archspec.train import TrainConfig, train
    >>> summary = train(TrainConfig(spec="specs/resnet18.yaml", data="synthetic", epochs=1))

Alone it trains in one process; under `torchrun --nproc_per_node=N` each process joins the
process group and the run is data-parallel (DDP). Rank 0 prints and writes OUT/last.pt,
OUT/best.pt and OUT/metrics.jsonl.
"""
from __future__ import annotations

from .errors import TrainError
from .loop import TrainConfig, train

__all__ = ["TrainConfig", "TrainError", "train"]
