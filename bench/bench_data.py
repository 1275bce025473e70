"""The data phase of each shipped hypothesis with a torch network: drawing its counterfactual
pairs (train/dev/test per variable, the joint multi-source splits, the isolate pairs of the
measure phase) and the held-out key sets and summaries the engine builds from them. Encoding
for the network is not included (unchanged, and it needs the network).

"Before" is the pure-Python implementation at ``--before`` (default: the last commit before
the vectorised drawing), checked out from git into a temporary directory and timed in a
subprocess of this same run; "after" is this checkout. Best of ``--repeat`` runs each, and
the ratio.

    python bench/bench_data.py [--repeat 3] [--before REF] [--specs hierarchical_equality tiny_lm]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "8abe09b6cdef0462a9ae8bc1da4c2cdf11216500"  # pure-Python drawing (random.Random per example)
SPECS = ("hierarchical_equality", "tiny_lm")  # the shipped specs whose networks are torch modules

if "--inner" not in sys.argv:  # the subprocess imports the "before" tree from PYTHONPATH instead
    sys.path.insert(0, str(ROOT))


def data_phase(spec, h, seed: int = 0) -> dict:
    """What ``align_hypothesis`` draws for ``h`` (the API both implementations share)."""
    from abstract.engine.data import dataset_summary, isolate_pairs, make_splits, memoized, pair_key
    from abstract.engine.joint_data import joint_summary, make_joint_splits
    from abstract.hypothesis.plan import build_plan

    plan = build_plan(h, None, seed=seed)
    model = memoized(spec.models[h.model])
    names = [v.name for v in plan.variables]
    joint = [v.name for v in plan.variables if v.layer is not None and v.intervention.kind in ("das", "lowrank")]
    joint = joint if plan.train.joint and len(joint) >= 2 else []
    d = plan.data
    raw = {n: make_splits(model, n, 0 if n in joint and plan.search.layers is None else plan.train.samples,
                          d.dev, d.test, seed, d.balance, d.informative) for n in names}
    trained_on = {n: {pair_key(e) for e in s["train"]} for n, s in raw.items()}
    summary = dataset_summary(raw)
    if joint:
        held = {pair_key(e) for n in joint for k in ("dev", "test") for e in raw[n][k]}
        js = make_joint_splits(model, joint, plan.train.samples, d.dev, d.test, seed, held, d.balance, d.informative)
        keys = {pair_key(e) for e in js["train"]}
        for n in joint:
            trained_on[n] |= keys
        summary["joint"] = joint_summary(js)
    isolate = {f"{a},{b}": len(isolate_pairs(model, a, b, d.test, seed=seed * 1000 + 7, exclude=trained_on[a]))
               for a in names for b in names if a != b}
    return {"train": summary["train"], "test": summary["test"], "isolate": isolate}


def measure(spec_dir: Path, specs, repeat: int) -> dict:
    """Best-of-``repeat`` seconds of each hypothesis's data phase."""
    from abstract.language import load_spec
    out = {}
    for name in specs:
        spec = load_spec(spec_dir / f"{name}.causal")
        for h in spec.hypotheses:
            if spec.networks[h.network].kind != "torch":
                continue
            best, info = float("inf"), None
            for _ in range(repeat):
                t = time.perf_counter()
                info = data_phase(spec, h)
                best = min(best, time.perf_counter() - t)
            out[f"{name}:{h.name}"] = {"seconds": best, **info}
    return out


def before(ref: str, specs, repeat: int) -> dict:
    """``measure`` on the tree at ``ref``, in a subprocess importing that tree."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--inner", "--tree", tmp, "--repeat", str(repeat),
               "--specs", *specs]
        proc = subprocess.run(cmd, env=env, cwd=tmp, check=True, capture_output=True, text=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", default=BEFORE, help="git ref of the implementation to compare against")
    ap.add_argument("--specs", nargs="+", default=list(SPECS))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        print(json.dumps(measure(Path(args.tree) / "specs", args.specs, args.repeat)))
        return
    old = before(args.before, args.specs, args.repeat)
    new = measure(ROOT / "specs", args.specs, args.repeat)
    print(f"data phase, best of {args.repeat}: before = {args.before[:10]}, after = this checkout")
    print(f"{'hypothesis':52s} {'before s':>9s} {'after s':>9s} {'ratio':>7s}   pairs (train/test, isolate)")
    total_old = total_new = 0.0
    for key, a in new.items():
        b = old.get(key)
        if b is None:
            print(f"{key:52s} {'-':>9s} {a['seconds']:9.3f}")
            continue
        total_old, total_new = total_old + b["seconds"], total_new + a["seconds"]
        print(f"{key:52s} {b['seconds']:9.3f} {a['seconds']:9.3f} {b['seconds'] / a['seconds']:6.1f}x   "
              f"{a['train']}/{a['test']}, {a['isolate'] or '-'}")
    if total_new:
        print(f"{'all':52s} {total_old:9.3f} {total_new:9.3f} {total_old / total_new:6.1f}x")


if __name__ == "__main__":
    main()
