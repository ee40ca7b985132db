"""`archspec train SPEC --data DIR|synthetic`: train a spec, alone or under torchrun (DDP)."""
from __future__ import annotations

import argparse
import sys

from .common import add_spec_args


def run(args: argparse.Namespace) -> int:
    from ..train import TrainConfig, TrainError, train
    cfg = TrainConfig(
        spec=args.spec, data=args.data, val_data=args.val_data, val_split=args.val_split,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, scale_lr=args.scale_lr,
        optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay,
        bias_decay=args.bias_decay, warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing, crop_scale=args.crop_scale, amp=args.amp,
        channels_last=args.channels_last, compile=args.compile, out=args.out,
        resume=args.resume, overwrite=args.overwrite, seed=args.seed, workers=args.workers,
        device=args.device, synthetic_samples=args.synthetic_samples,
        overrides=list(args.overrides), progress=not args.no_progress)
    try:
        train(cfg)
    except TrainError as exc:
        if not exc.quiet:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a spec on an image folder or synthetic data (also under torchrun)",
        description="Build the spec's module and train it: an image folder with one subfolder "
                    "per class (or `synthetic`), warm-up + cosine learning rate, label "
                    "smoothing, no weight decay on biases and norms. Each epoch writes "
                    "OUT/last.pt (atomically), OUT/best.pt (best validation accuracy) and a "
                    "line of OUT/metrics.jsonl. Under `torchrun --nproc_per_node=N` the run is "
                    "data-parallel (DDP); rank 0 prints and writes. See docs/training.md.")
    add_spec_args(p)
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True, metavar="DIR|synthetic",
                   help="image folder (DIR/CLASS/IMAGE; Pillow decodes it) or `synthetic` "
                        "(learnable colour patterns made on the fly, no files)")
    d.add_argument("--val-data", metavar="DIR",
                   help="validation image folder, same class names (default: a split of --data)")
    d.add_argument("--val-split", type=float, metavar="F",
                   help="fraction of each class held out for validation, chosen by --seed "
                        "(default 0.1 without --val-data; 0: no validation)")
    d.add_argument("--crop-scale", type=float, default=0.08, metavar="F",
                   help="smallest area fraction of the random-resized crop (default 0.08; "
                        "raise it, e.g. to 0.35, for small images)")
    d.add_argument("--synthetic-samples", type=int, default=1024, metavar="N",
                   help="training images per epoch with --data synthetic (default 1024; "
                        "validation: N/4)")
    d.add_argument("--workers", type=int, metavar="N",
                   help="data loader processes per training process (default: 0 on CPU, "
                        "min(8, cores per process) on GPU)")
    r = p.add_argument_group("recipe")
    r.add_argument("--epochs", type=int, default=10, metavar="N", help="default 10")
    r.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="images per process per step (default 64); the global batch is N x "
                        "processes")
    r.add_argument("--lr", type=float, metavar="X",
                   help="peak learning rate (default 0.1 for sgd, 0.001 for adamw)")
    r.add_argument("--scale-lr", action="store_true",
                   help="linear scaling: use lr x global batch / 256 (Goyal et al. 2017)")
    r.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="default sgd")
    r.add_argument("--momentum", type=float, default=0.9, metavar="X",
                   help="for sgd (default 0.9)")
    r.add_argument("--weight-decay", type=float, metavar="X",
                   help="default 1e-4 for sgd, 0.05 for adamw; applied to conv and linear "
                        "weights only unless --bias-decay")
    r.add_argument("--bias-decay", action="store_true",
                   help="also apply weight decay to biases and norm scales and shifts")
    r.add_argument("--warmup-epochs", type=int, default=0, metavar="N",
                   help="linear warm-up epochs before the cosine decay (default 0; Bag of "
                        "Tricks: 5)")
    r.add_argument("--label-smoothing", type=float, default=0.0, metavar="X",
                   help="default 0; Bag of Tricks: 0.1")
    r.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seeds the weights, the data order and augmentation, the split "
                        "(default 0)")
    s = p.add_argument_group("speed")
    s.add_argument("--amp", choices=("bf16", "fp16"),
                   help="mixed precision autocast (fp16 adds a gradient scaler)")
    s.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    s.add_argument("--compile", action="store_true", help="torch.compile the model")
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="default auto: CUDA (the local rank's GPU) when available, else CPU")
    o = p.add_argument_group("output")
    o.add_argument("--out", metavar="DIR", help="run folder (default: out/<spec name>)")
    o.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt (same spec required)")
    o.add_argument("--overwrite", action="store_true",
                   help="delete last.pt, best.pt and metrics.jsonl in --out and start again")
    o.add_argument("--no-progress", action="store_true",
                   help="no progress bar, even on a terminal (one line per epoch remains)")
    p.set_defaults(func=run)
