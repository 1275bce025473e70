"""A layer sweep (one DAS step's worth of work at every layer, one position): the engine's
cached path (prefix cached once per site, only the suffix runs each step) against the
uncached path (every step a whole-model forward with a hook plus a fresh source pass).
Total time of ``steps`` training steps per layer, summed over layers, one run.

    python bench/bench_layer_sweep.py [--batch 8] [--seq 16] [--steps 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from _common import batch, device, gpt2  # noqa: E402

from abstract.hypothesis.plan import InterventionPlan  # noqa: E402
from abstract.engine.train import make_intervention  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402


def sweep(layers: int, hidden: int, n: int, seq: int, steps: int, cached: bool) -> float:
    model = gpt2(layers, hidden)
    runner = make_runner(model)
    base, source = batch(n, seq, seed=0), batch(n, seq, seed=1)
    labels = torch.randint(0, 512, (n,), device=device())
    last = torch.full((n,), seq - 1, device=device())
    t = time.perf_counter()
    for layer in range(layers):
        site = Site(layer=layer, component="resid_post", position="last")
        interv = make_intervention(InterventionPlan("das", 8), hidden, seed=layer).to(device())
        opt = torch.optim.Adam(interv.parameters(), lr=1e-3)
        if cached:
            cache, src = runner.prepare(base, site), runner.collect(source, site)
        for _ in range(steps):
            if cached:
                out = runner.run_from_site(cache, lambda b, f=interv, x=src: f(b, x), logit_positions=last)
            else:
                s = runner.collect(source, site)
                out = runner.run_with_hook(base, site, lambda b, f=interv, x=s: f(b, x), logit_positions=last)
            loss = torch.nn.functional.cross_entropy(out.float(), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    cpu = not torch.cuda.is_available()
    ap.add_argument("--batch", type=int, default=8 if cpu else 32)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3 if cpu else 20)
    args = ap.parse_args()
    print(f"device {device()}, batch {args.batch}, seq {args.seq}, {args.steps} steps per layer")
    print(f"{'model':>8} {'cached s':>9} {'uncached s':>11} {'ratio':>6}")
    for layers, hidden in ((4, 256), (12, 768)):
        sweep(layers, hidden, args.batch, args.seq, 1, True)  # warm-up
        c = sweep(layers, hidden, args.batch, args.seq, args.steps, True)
        u = sweep(layers, hidden, args.batch, args.seq, args.steps, False)
        print(f"{layers}x{hidden:<6} {c:9.2f} {u:11.2f} {c / u:6.2f}", flush=True)


if __name__ == "__main__":
    main()
