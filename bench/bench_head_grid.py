"""A head grid (every layer x every head, one position, full interchange from a source batch)
on a random-weight GPT-2 12x768 (vocabulary 50257): the engine's head sites (``head_out``,
source activations of all 144 heads collected in one pass, the base prefix cached once, only
the blocks from the site's layer on run per cell) against the same sweep done the plain way,
interchanging the whole ``attn_out`` of the cell's layer with forward hooks written here (source
``attn_out`` recorded once, one whole-model forward with a hook per cell). Same batch, same
number of cells; logits at the last token only on both sides. Median seconds of ``--repeat``
sweeps, printed with the ratio.

A correctness line comes first: interchanging *every* head of a layer as one head group must
give the same logits as interchanging that layer's ``attn_out`` (the output projection is
linear and per token), checked here on three layers.

    python bench/bench_head_grid.py [--batch 8] [--seq 16] [--repeat 3] [--layers 12]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from _common import batch, device, timeit  # noqa: E402

from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402

VOCAB = 50257


def gpt2_full(layers: int, hidden: int = 768, seed: int = 0):
    """A random-weight GPT-2 with the real vocabulary and 64-wide heads (12x768 = GPT-2 small)."""
    import transformers as T
    torch.manual_seed(seed)
    cfg = T.GPT2Config(n_layer=layers, n_embd=hidden, n_head=hidden // 64, vocab_size=VOCAB,
                       n_positions=64, bos_token_id=0, eos_token_id=0)
    return T.AutoModelForCausalLM.from_config(cfg).to(device()).eval().requires_grad_(False)


def engine_sweep(runner, base: dict, source: dict, layers: int, heads: int,
                 last: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """Every (layer, head) cell through the engine's head sites: one source pass and one base
    pass for the whole grid, then each cell runs the blocks from its layer on."""
    sites = [Site(layer=la, component="head_out", head=h, position="last")
             for la in range(layers) for h in range(heads)]
    src = runner.collect_many(source, sites)
    caches = runner.prepare_many(base, sites)
    return {(s.layer, s.head): runner.run_from_site(caches[s], src[s], logit_positions=last) for s in sites}


def hook_sweep(model, base: dict, source: dict, layers: int, heads: int) -> dict[tuple[int, int], torch.Tensor]:
    """The same grid the plain way: each cell interchanges its layer's whole ``attn_out`` at the
    last token (what a hook on the attention module can reach), one whole forward per cell."""
    blocks = model.transformer.h
    recorded: dict[int, torch.Tensor] = {}
    handles = [blocks[la].attn.register_forward_hook(
        lambda m, a, o, la=la: recorded.__setitem__(la, o[0][:, -1].detach())) for la in range(layers)]
    try:
        model.transformer(**source)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for la in range(layers):
        def patch(m, a, o, la=la):
            x = o[0].clone()
            x[:, -1] = recorded[la]
            return (x,) + tuple(o[1:])
        handle = blocks[la].attn.register_forward_hook(patch)
        try:
            for h in range(heads):
                out[(la, h)] = model.lm_head(model.transformer(**base).last_hidden_state[:, -1])
        finally:
            handle.remove()
    return out


def check(model, runner, base: dict, source: dict, layers: int, heads: int, last: torch.Tensor) -> float:
    """Max |logit difference| between the all-heads group and the attn_out hook, on 3 layers."""
    ref = hook_sweep(model, base, source, layers, 1)
    worst = 0.0
    for la in sorted({0, layers // 2, layers - 1}):
        group = Site(component="head_out", heads=tuple((la, h) for h in range(heads)), position="last")
        got = runner.run_with_hook(base, group, runner.collect(source, group), logit_positions=last)
        worst = max(worst, float((got - ref[(la, 0)]).abs().max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    cpu = not torch.cuda.is_available()
    ap.add_argument("--batch", type=int, default=8 if cpu else 32)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3 if cpu else 5)
    ap.add_argument("--layers", type=int, default=12)
    args = ap.parse_args()
    model = gpt2_full(args.layers)
    heads = model.config.n_head
    runner = make_runner(model)
    base, source = batch(args.batch, args.seq, vocab=VOCAB, seed=0), batch(args.batch, args.seq, vocab=VOCAB, seed=1)
    last = torch.full((args.batch,), args.seq - 1, device=device())
    print(f"device {device()}, GPT-2 {args.layers}x{model.config.n_embd} (vocab {VOCAB}, {heads} heads), "
          f"batch {args.batch}, seq {args.seq}, {args.layers * heads} cells, median of {args.repeat}")
    with torch.no_grad():
        print(f"check: all heads of a layer as one group vs attn_out hook, max |logit diff| "
              f"{check(model, runner, base, source, args.layers, heads, last):.2e}")
        t_engine = timeit(lambda: engine_sweep(runner, base, source, args.layers, heads, last),
                          repeat=args.repeat, warmup=1)
        t_hooks = timeit(lambda: hook_sweep(model, base, source, args.layers, heads), repeat=args.repeat, warmup=1)
    print(f"{'head grid (engine) s':>21} {'attn_out hooks s':>17} {'ratio':>6}")
    print(f"{t_engine:21.3f} {t_hooks:17.3f} {t_engine / t_hooks:6.2f}", flush=True)


if __name__ == "__main__":
    main()
