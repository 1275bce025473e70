"""How well the attribution pre-screen ranks grid cells: Spearman's rho between each cell's
pre-screen score and the test IIA that DAS training then reaches there, on the shipped specs.

Every cell is trained (``prescreen`` set to the grid's size), so both figures exist for all
of them. Specs whose network must be downloaded (``hf "gpt2"``) are skipped with a message
when it is not in the local Hugging Face cache.

    python bench/bench_prescreen_rank.py [--seeds 1] [--samples N]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from abstract.engine.align import align_hypothesis  # noqa: E402
from abstract.language import load_spec  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402

SPECS = Path(__file__).resolve().parent.parent / "specs"
BIG = 10_000  # prescreen K larger than any grid: every cell trains


def ranks(xs: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs: list[float], ys: list[float]) -> Optional[float]:
    """Pearson correlation of the ranks; None when either side is constant or too short."""
    if len(xs) < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / (sxx * syy) ** 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--samples", type=int, default=None, help="training pairs (default: the spec's)")
    ap.add_argument("--spec", action="append", help="spec file names under specs/ (default: all)")
    args = ap.parse_args()
    overrides: dict = {"prescreen": BIG, "seeds": args.seeds}
    if args.samples:
        overrides["samples"] = args.samples
    print(f"{'spec':<28} {'hypothesis':<32} {'variable':<8} {'cells':>5} {'rho':>6}  top-3 by score -> IIA")
    for path in sorted(SPECS.glob("*.causal")):
        if args.spec and path.name not in args.spec:
            continue
        spec = load_spec(path)
        for h in spec.hypotheses:
            if not h.search:
                continue
            try:
                r = align_hypothesis(spec, h.name, progress=False, device="cpu", overrides=overrides)
            except (SpecError, OSError) as e:
                print(f"{path.name:<28} {h.name:<32} skipped: {str(e).splitlines()[0][:90]}")
                continue
            for name, v in r["variables"].items():
                grid = v.get("grid") or {}
                screen = grid.get("prescreen")
                if not screen:
                    continue
                pairs = [(s, i) for srow, irow in zip(screen["score"], grid["iia_mean"])
                         for s, i in zip(srow, irow) if s is not None and i is not None]
                rho = spearman([p[0] for p in pairs], [p[1] for p in pairs])
                top = sorted(pairs, key=lambda p: -p[0])[:3]
                shown = "n/a" if rho is None else f"{rho:+.2f}"
                print(f"{path.name:<28} {h.name:<32} {name:<8} {len(pairs):>5} {shown:>6}  "
                      + ", ".join(f"{i:.2f}" for _, i in top) + f" (best IIA {max(p[1] for p in pairs):.2f})",
                      flush=True)


if __name__ == "__main__":
    main()
