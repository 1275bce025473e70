"""A grid row (one layer, several token positions): the positions' DAS interventions trained
in one stacked pass per step (engine/batched.py) against one pass per position, as the grid
search would otherwise do. Same steps, same minibatches; total seconds for ``steps`` steps of
every position, printed with the ratio, one run.

    python bench/bench_grid_row.py [--batch 16] [--seq 16] [--positions 5] [--steps 5]
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

from abstract.engine.batched import train_stacked  # noqa: E402
from abstract.engine.data import PairSet  # noqa: E402
from abstract.hypothesis.plan import InterventionPlan, TrainPlan  # noqa: E402
from abstract.engine.train import make_intervention, prepare_site, prepare_sites, train_intervention  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402


class LogitsOnly:
    """The encoder interface the trainers need: next-token logits as class scores."""

    @staticmethod
    def class_logits(out):
        return out.float()


def row(layers: int, hidden: int, n: int, seq: int, positions: int, steps: int) -> tuple[float, float]:
    model = gpt2(layers, hidden)
    runner = make_runner(model)
    base, source = batch(n * steps, seq, seed=0), batch(n * steps, seq, seed=1)
    labels = torch.randint(0, 512, (n * steps,), device=device())
    last = torch.full((n * steps,), seq - 1, device=device())
    pairs = PairSet([None] * (n * steps), base, source, labels, labels, last, ("x",))
    sites = [Site(layer=layers // 2, component="resid_post", position=p) for p in range(positions)]
    tp, ip = TrainPlan(samples=n * steps, epochs=1, batch=n, lr=1e-3), InterventionPlan("das", 8)

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    train_stacked(runner, LogitsOnly, prepare_sites(runner, sites, pairs),  # warm-up
                  [make_intervention(ip, hidden, 0) for _ in sites], tp, 0)
    sync()
    t = time.perf_counter()  # both timings include preparing the sites (prefix and source passes)
    train_stacked(runner, LogitsOnly, prepare_sites(runner, sites, pairs),
                  [make_intervention(ip, hidden, 0) for _ in sites], tp, 0)
    sync()
    stacked = time.perf_counter() - t
    t = time.perf_counter()
    for s in sites:
        train_intervention(runner, LogitsOnly, prepare_site(runner, s, pairs), make_intervention(ip, hidden, 0), tp, 0)
    sync()
    return stacked, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    cpu = not torch.cuda.is_available()
    ap.add_argument("--batch", type=int, default=16 if cpu else 64)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--positions", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5 if cpu else 20)
    args = ap.parse_args()
    print(f"device {device()}, batch {args.batch}, seq {args.seq}, {args.positions} positions, {args.steps} steps")
    print(f"{'model':>8} {'stacked s':>10} {'one by one s':>13} {'ratio':>6}")
    for layers, hidden in ((4, 256), (12, 768)):
        s, o = row(layers, hidden, args.batch, args.seq, args.positions, args.steps)
        print(f"{layers}x{hidden:<6} {s:10.2f} {o:13.2f} {s / o:6.2f}", flush=True)


if __name__ == "__main__":
    main()
