"""Sweep throughput (cells per second) through the Ray executor with 1 and 2 workers, as ratios
against the local executor in the same run; with CUDA, also 1 vs 2 and 4 fractional workers
sharing one GPU (``--gpus-per-worker 1, 0.5, 0.25``).

The sweep: two variables of a seeded random MLP (``_sweep_net.py``, width 256, 8 layers), a
grid over every layer, 3 training seeds -- the train phase only (``Sweep.run_all``), after one
warm-up sweep per executor (workers started, network loaded: the steady state of a long sweep;
the cold start is printed too). Every executor must produce the same cells (checked).

    python bench/bench_ray_sweep.py [--samples 1024] [--epochs 2] [--layers 8] [--width 256]

Ray on a sandboxed machine needs a loopback-only network namespace:
    unshare -n sh -c 'ip link set lo up && python bench/bench_ray_sweep.py'
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from abstract.engine.run import HypothesisRun, threads_for  # noqa: E402
from abstract.executors import LocalExecutor, Sweep  # noqa: E402
from abstract.language import compile_text  # noqa: E402

SPEC = """
model Pairs {{
    input a, b, c, d : bool
    x = a and b
    z = c or d
    output y = if x then z else not z
}}
network mlp = torch "{builder}:build" {{ width {width}, depth {layers}, inputs 8, classes 2 }}
hypothesis sweep : Pairs ~ mlp {{
    align x via das(dim=8)
    align z via das(dim=8)
    search layer 0..{last}
    train samples {samples}, epochs {epochs}, batch 64, lr 0.005, seeds 3
    data test 200, dev 100, min_accuracy 0
}}
"""


def prepared(spec, device: str) -> HypothesisRun:
    run = HypothesisRun(spec, "sweep", device=device, progress=False)
    run.load()
    run.resolve_sites()
    run.check_network()
    run.draw_data()
    return run


def sweep(spec, executor, device: str) -> tuple[float, int, dict]:
    """Seconds for one sweep's cells, their number, and a digest of them (to compare executors)."""
    run = prepared(spec, device)
    with threads_for(run.net.module, run.dev):
        t = time.perf_counter()
        errors = Sweep(run, executor).run_all()
        seconds = time.perf_counter() - t
    assert not errors, errors
    digest = {(name, site.label, seed): (c.test.correct, tuple(round(x, 6) for x in c.losses[-3:]))
              for name, ctx in run.contexts.items() for (site, seed), c in ctx.cells.items()}
    return seconds, len(digest), digest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--width", type=int, default=256)
    args = p.parse_args()
    try:
        from abstract.executors.ray_executor import RayExecutor, import_ray
        import_ray()
    except Exception as err:  # noqa: BLE001
        print(f"skipped: {err}")
        return
    builder = Path(__file__).resolve().parent / "_sweep_net.py"
    with tempfile.TemporaryDirectory() as tmp:
        text = SPEC.format(builder=builder, width=args.width, layers=args.layers, last=args.layers - 1,
                           samples=args.samples, epochs=args.epochs)
        spec = compile_text(text, str(Path(tmp) / "sweep.causal"))
        print(f"sweep: 2 variables x {args.layers} layers (first seed) + 3 seeds each, {args.samples} pairs x "
              f"{args.epochs} epochs per cell; {os.cpu_count()} CPUs")
        rows = [("cpu", "local", LocalExecutor(), None)]
        rows += [("cpu", f"ray, {n} worker(s)", None, dict(workers=n)) for n in (1, 2)]
        if torch.cuda.is_available():
            rows += [("cuda", "local", LocalExecutor(), None)]
            rows += [("cuda", f"ray, {n} worker(s) x {1 / n:g} GPU", None, dict(gpus_per_worker=1 / n))
                     for n in (1, 2, 4)]
        base: dict[str, tuple[float, dict]] = {}
        print(f"{'device':6} {'executor':28} {'cold s':>8} {'warm s':>8} {'cells/s':>8} {'speedup':>9}")
        for device, label, executor, ray_options in rows:
            owned = executor is None
            if owned:
                executor = RayExecutor(init_options={"num_cpus": os.cpu_count()}, **(ray_options or {})).start()
            try:
                cold, _, _ = sweep(spec, executor, device)
                warm, n, digest = sweep(spec, executor, device)
            finally:
                if owned:
                    executor.close()
            if label == "local":
                base[device] = (warm, digest)
            same = "" if digest == base[device][1] else "  (CELLS DIFFER)"
            print(f"{device:6} {label:28} {cold:8.2f} {warm:8.2f} {n / warm:8.2f} {base[device][0] / warm:8.2f}x{same}")


if __name__ == "__main__":
    main()
