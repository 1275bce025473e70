"""A full layer x position DAS sweep: the engine's path against pyvene 0.1.8's per-site loop.

Shape (issue 11, 6a): a random-weight GPT-2 of 12 blocks x 768 (vocab 50257), one batch of
B=8 base and 8 source prompts of T=16 tokens, a DAS subspace of 8 dims at ``resid_post``
(pyvene: ``block_output``) of every layer x every token position (12 x 16 = 192 cells), 3
Adam steps per cell, loss = cross-entropy of the last token's logits against a label.

* pyvene: per cell, an ``IntervenableModel`` with a ``LowRankRotatedSpaceIntervention`` and
  3 steps, each a source forward plus a base forward (whole model, LM head over every
  position) and a backward.
* engine, every cell: one base forward caches every layer's prefix and one source forward
  collects every site (``prepare_sites``, stopping after the deepest block, no LM head);
  each layer's 16 positions train in stacked passes (``train_stacked``) that run only the
  blocks after the site and the head at the last token.
* engine, pre-screened: the attribution pre-screen scores all 192 cells (one forward and
  backward of the batch plus one source forward), then only the top K cells train.

Times are wall-clock of one run each, in the same process, on the same model and batch.

    python bench/bench_sweep_vs_pyvene.py [--top 8] [--layers 12 --hidden 768 --vocab 50257]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from _common import batch, device, gpt2  # noqa: E402

from abstract.engine.batched import MAX_STACK, train_stacked  # noqa: E402
from abstract.engine.data import PairSet  # noqa: E402
from abstract.engine.prescreen import attribution_scores, runner_positions, top_cells  # noqa: E402
from abstract.engine.train import make_intervention, prepare_sites  # noqa: E402
from abstract.hypothesis.plan import InterventionPlan, TrainPlan  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402

DIM = 8


class WholeVocab:
    """Class scores = the logits of every token (the stand-in for an output verbalizer)."""

    uses_positions = True

    def class_logits(self, out):
        return (out.logits if hasattr(out, "logits") else out).float()


def import_pyvene():
    """pyvene 0.1.8, or None. Its plotting helpers import matplotlib/seaborn at import time; the
    sweep does not plot, so absent ones are stubbed."""
    for name in ("matplotlib", "matplotlib.pyplot", "seaborn"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    try:
        import pyvene
    except ImportError:
        return None
    return pyvene


def pairs_of(n: int, seq: int, vocab: int) -> PairSet:
    base, source = batch(n, seq, vocab, seed=0), batch(n, seq, vocab, seed=1)
    label = torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(2)).to(device())
    last = torch.full((n,), seq - 1, device=device())
    return PairSet([None] * n, base, source, label, label, last, ("v",))  # type: ignore[list-item]


def engine_sweep(runner, pairs: PairSet, cells: list[Site], hidden: int, steps: int) -> Timing:
    """Prefix caches for the cells (one base, one source forward), then every layer's cells in
    stacked passes of ``steps`` steps. Seconds."""
    tp = TrainPlan(samples=len(pairs), epochs=steps, batch=len(pairs), lr=1e-3, seeds=(0,))
    t = Timing.start()
    data = dict(zip(cells, prepare_sites(runner, cells, pairs)))
    for layer in sorted({int(c.layer or 0) for c in cells}):
        row = [c for c in cells if c.layer == layer]
        for start in range(0, len(row), MAX_STACK):
            group = row[start:start + MAX_STACK]
            intervs = [make_intervention(InterventionPlan("das", DIM), hidden, seed=i) for i in range(len(group))]
            train_stacked(runner, WholeVocab(), [data[c] for c in group], intervs, tp, seed=0)
    _sync()
    return t.stop()


def prescreened_sweep(runner, pairs: PairSet, cells: list[Site], hidden: int, steps: int, top: int) -> Timing:
    t = Timing.start()
    scores = attribution_scores(runner, WholeVocab(), pairs, cells, batch=len(pairs),
                                site_positions=runner_positions(runner))
    kept = top_cells(scores, top, {})
    engine_sweep(runner, pairs, kept, hidden, steps)
    _sync()
    return t.stop()


def pyvene_sweep(pv, model, pairs: PairSet, layers: int, seq: int, steps: int, every: int) -> tuple[Timing, int]:
    """pyvene's per-site loop over the grid; ``every`` > 1: only every ``every``-th cell in grid
    order (spread over all layers and positions; the caller extrapolates)."""
    n = len(pairs)
    done = 0
    t = Timing.start()
    for index, (layer, pos) in enumerate((layer, pos) for layer in range(layers) for pos in range(seq)):
        if index % every:
            continue
        cfg = pv.IntervenableConfig(representations=[{"layer": layer, "component": "block_output",
                                                      "unit": "pos", "low_rank_dimension": DIM}],
                                    intervention_types=pv.LowRankRotatedSpaceIntervention)
        im = pv.IntervenableModel(cfg, model)
        im.set_device(device())
        im.disable_model_gradients()
        opt = torch.optim.Adam([p for v in im.interventions.values() for p in v.parameters()], lr=1e-3)
        loc = [[[pos]] * n]
        for _ in range(steps):
            _, out = im(pairs.base_x, [pairs.source_x], {"sources->base": (loc, loc)})
            loss = torch.nn.functional.cross_entropy(out.logits[:, -1].float(), pairs.label)
            opt.zero_grad()
            loss.backward()
            opt.step()
        done += 1
    _sync()
    return t.stop(), done


class Timing:
    """Wall-clock and process CPU seconds (CPU time is the steadier figure on shared cores)."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu

    @classmethod
    def start(cls) -> "Timing":
        return cls(time.perf_counter(), time.process_time())

    def stop(self) -> "Timing":
        return Timing(time.perf_counter() - self.wall, time.process_time() - self.cpu)

    def scaled(self, k: float) -> "Timing":
        return Timing(self.wall * k, self.cpu * k)

    def __str__(self) -> str:
        return f"{self.wall:8.2f} s wall {self.cpu:8.2f} s cpu"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=8, help="cells the pre-screened sweep trains")
    ap.add_argument("--pyvene-every", type=int, default=1,
                    help="time pyvene on every N-th cell of the grid (in grid order; N coprime to T varies the "
                         "position) and extrapolate (default 1: every cell)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pv = import_pyvene()
    model = gpt2(args.layers, args.hidden, vocab=args.vocab)
    runner = make_runner(model)
    pairs = pairs_of(args.batch, args.seq, args.vocab)
    cells = [Site(layer, "resid_post", pos) for layer in range(args.layers) for pos in range(args.seq)]
    print(f"device {device()}, torch threads {torch.get_num_threads()}, GPT-2 {args.layers}x{args.hidden} "
          f"vocab {args.vocab}, B={args.batch}, T={args.seq}, DAS dim {DIM}, {args.steps} steps per cell, "
          f"{len(cells)} cells", flush=True)
    engine_sweep(runner, pairs, cells[:2], args.hidden, 1)  # warm-up
    # cheapest first, so a run cut short on loaded cores still prints the figures that matter
    screened = prescreened_sweep(runner, pairs, cells, args.hidden, args.steps, args.top)
    print(f"engine, pre-screen top {args.top:<3}{screened}", flush=True)
    pv_t: Timing | None = None
    if pv is None:
        print("pyvene is not installed: pip install --no-deps pyvene==0.1.8 (the ratios need it); skipped")
    else:
        pv_t, done = pyvene_sweep(pv, model, pairs, args.layers, args.seq, args.steps, args.pyvene_every)
        if done < len(cells):
            pv_t = pv_t.scaled(len(cells) / done)
            print(f"pyvene per-site loop      {pv_t} (extrapolated from {done} of {len(cells)} cells, every "
                  f"{args.pyvene_every}th)", flush=True)
        else:
            print(f"pyvene per-site loop      {pv_t}", flush=True)
        report_ratios("pre-screen top " + str(args.top), screened, pv_t)
    full = engine_sweep(runner, pairs, cells, args.hidden, args.steps)
    print(f"engine, every cell        {full}", flush=True)
    if pv_t is not None:
        report_ratios("every cell", full, pv_t)


def report_ratios(what: str, ours: Timing, pv_t: Timing) -> None:
    print(f"ratio engine / pyvene, {what}: {ours.wall / pv_t.wall:.3f}x wall, {ours.cpu / pv_t.cpu:.3f}x cpu",
          flush=True)

if __name__ == "__main__":
    main()
