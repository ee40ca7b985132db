"""Design-space sampling speed: candidate specs drawn, validated and resolved per second.

    python bench/sample_speed.py [--spec specs/resnet50.yaml] [--draws 1000] [--repeat 3]

Runs `Sampler.run` (draw depths, widths and groups around a ResNet-50-sized base; validate;
resolve the analytic counts, activations and the training-memory estimate; check constraints)
and, alternately in the same process, the baseline: the same candidates through the public
`archspec.resolve(path, overrides)` (the file read and parsed again for each). Rates are per
CPU second of this process (`time.process_time`), so they mean "on one core" even when other
work shares the machine. Target: >= 500 candidates/s for ResNet-50-sized specs. No torch.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archspec  # noqa: E402
from archspec.sampling import Sampler, parse_constraint, parse_vary  # noqa: E402

VARY = ["stages.depths=2..8", "stages.widths=192..3072/64:log", "block.groups=1,2,4,8"]
CONSTRAINTS = ["macs<=6G", "params<=40M"]


def _rate(fn, count: int) -> float:
    start = time.process_time()
    fn()
    return count / (time.process_time() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="specs/resnet50.yaml")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    base = str(ROOT / args.spec)
    sampler = Sampler(base, [parse_vary(v) for v in VARY],
                      [parse_constraint(c) for c in CONSTRAINTS])
    rng = random.Random(0)
    draws = [sampler.draw(rng) for _ in range(args.draws)]
    overrides = [[f"{k}={json.dumps(v)}" for k, v in d.items()] for d in draws]
    baseline_n = max(args.draws // 5, 20)

    def baseline() -> None:
        for o in overrides[:baseline_n]:
            try:
                archspec.resolve(base, o)
            except archspec.SpecError:
                pass
    sampler.run(50, seed=1)  # warm-up
    ours, theirs, kept = [], [], 0
    for r in range(args.repeat):
        result = None

        def run() -> None:
            nonlocal result
            result = sampler.run(args.draws, seed=r)
        ours.append(_rate(run, args.draws))
        theirs.append(_rate(baseline, baseline_n))
        kept = len(result.kept)
    mean_blocks = statistics.mean(sum(d["stages.depths"]) for d in draws)
    print(f"sample {args.spec}: {statistics.median(ours):.0f} candidates/s per CPU second "
          f"(median of {args.repeat} x {args.draws} draws, {mean_blocks:.1f} blocks on average, "
          f"{kept} kept in the last run; target >= 500: "
          f"{'met' if statistics.median(ours) >= 500 else 'NOT met'})")
    print(f"baseline archspec.resolve(path, overrides) per candidate: "
          f"{statistics.median(theirs):.0f}/s; ratio {statistics.median(ours) / statistics.median(theirs):.2f}x")
    print(f"torch imported: {'torch' in sys.modules}")


if __name__ == "__main__":
    main()
