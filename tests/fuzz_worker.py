"""Child process of the slow property test: for each spec path read from stdin, build the
module, check it against the IR, and train one step (forward, backward, SGD); answer one JSON
line. A native crash inside torch ends this process, and the parent names the spec it sent."""
from __future__ import annotations

import json
import sys


def check(path: str) -> dict:
    import torch
    import archspec
    graph = archspec.resolve(path)
    model = archspec.to_module(graph)
    params = sum(p.numel() for p in model.parameters())
    if params != graph.params:
        return {"ok": False, "error": f"module has {params} params, the IR {graph.params}"}
    c, h, w = graph.input_shape
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    out = model(torch.randn(2, c, h, w))
    if tuple(out.shape) != (2,) + tuple(graph.output_shape):
        return {"ok": False, "error": f"output {tuple(out.shape)}, IR {graph.output_shape}"}
    out.float().square().mean().backward()
    optimizer.step()
    return {"ok": True}


def main() -> None:
    import torch
    torch.set_num_threads(1)
    for line in sys.stdin:
        try:
            answer = check(line.strip())
        except Exception as exc:  # reported to the parent, which fails the test with it
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
