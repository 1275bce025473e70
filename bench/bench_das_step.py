"""One DAS training step of the engine (cached prefix, only the layers after the site run)
against a plain forward+backward of the same model on the same batch (source pass + base
pass with backward): the floor any uncached implementation pays. Also the uncached DAS
step (whole-model forward with a hook). Printed as ratios, one run.

    python bench/bench_das_step.py [--batch 32] [--seq 16] [--layer-frac 0.5]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from _common import batch, device, gpt2, timeit  # noqa: E402

from abstract.hypothesis.plan import InterventionPlan  # noqa: E402
from abstract.engine.train import make_intervention  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402


def bench(layers: int, hidden: int, n: int, seq: int, frac: float, dim: int = 8) -> dict:
    model = gpt2(layers, hidden)
    runner = make_runner(model)
    base, source = batch(n, seq, seed=0), batch(n, seq, seed=1)
    site = Site(layer=int(layers * frac), component="resid_post", position="last")
    labels = torch.randint(0, 512, (n,), device=device())
    last = torch.full((n,), seq - 1, device=device())
    interv = make_intervention(InterventionPlan("das", dim), hidden, seed=0).to(device())
    opt = torch.optim.Adam(interv.parameters(), lr=1e-3)

    cache = runner.prepare(base, site)
    src = runner.collect(source, site)

    def ours():
        out = runner.run_from_site(cache, lambda b: interv(b, src), logit_positions=last)
        loss = torch.nn.functional.cross_entropy(out.float(), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def uncached():
        s = runner.collect(source, site)
        out = runner.run_with_hook(base, site, lambda b: interv(b, s), logit_positions=last)
        loss = torch.nn.functional.cross_entropy(out.float(), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    emb = model.get_input_embeddings()

    def floor():
        with torch.no_grad():
            model(**source, use_cache=False)
        x = emb(base["input_ids"]).detach().requires_grad_(True)
        out = model(inputs_embeds=x, attention_mask=base["attention_mask"], use_cache=False).logits[:, -1]
        torch.nn.functional.cross_entropy(out.float(), labels).backward()

    t_ours, t_unc, t_floor = timeit(ours), timeit(uncached), timeit(floor)
    return {"ours": t_ours, "uncached": t_unc, "floor": t_floor, "site": site.label}


def main() -> None:
    ap = argparse.ArgumentParser()
    cpu = not torch.cuda.is_available()
    ap.add_argument("--batch", type=int, default=8 if cpu else 32)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--layer-frac", type=float, default=0.5, help="site layer as a fraction of depth")
    args = ap.parse_args()
    print(f"device {device()}, batch {args.batch}, seq {args.seq}, threads {torch.get_num_threads()}")
    print(f"{'model':>8} {'site':>18} {'ours ms':>9} {'uncached ms':>12} {'floor ms':>9} {'ours/floor':>11} "
          f"{'ours/uncached':>14}")
    for layers, hidden in ((4, 256), (12, 768)):
        r = bench(layers, hidden, args.batch, args.seq, args.layer_frac)
        print(f"{layers}x{hidden:<6} {r['site']:>18} {1e3 * r['ours']:9.2f} {1e3 * r['uncached']:12.2f} "
              f"{1e3 * r['floor']:9.2f} {r['ours'] / r['floor']:11.2f} {r['ours'] / r['uncached']:14.2f}",
              flush=True)


if __name__ == "__main__":
    main()
