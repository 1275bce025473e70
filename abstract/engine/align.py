"""Align one hypothesis: load the network, build counterfactual data, search sites, train
interventions over seeds, run controls and multi-variable metrics; return the HYPOTHESIS
entry of the results document (docs/results-schema.md), JSON-able, with correct/n counts.

Variables are aligned *separately* (each its own intervention, own data, own site search)
unless ``train joint true`` groups those at one site (``joint.py``: one shared basis,
multi-source data); cause/isolate then combine the trained alignments (a joint variable's
block). Progress goes to stderr (tqdm).
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Mapping, Optional

import torch

from ..device import pick_device
from ..language import Spec
from ..language.errors import SpecError
from ..neural.runner import make_runner
from .builder import check_fits
from .controls import random_network_control, random_rotation_result
from .data import pair_key, dataset_summary, encode_pairs, isolate_pairs, make_splits, memoized
from .encoders import make_encoder
from .metrics import metric_entry
from .networks import LoadedNetwork, load_network
from ..hypothesis.plan import build_plan, check_against_model
from .joint import joint_groups, random_network_joint, run_group
from .joint_data import encode_joint, joint_summary, make_joint_splits
from .search import VariableContext, align_site, grid_axes, run_variable
from .train import count_correct, predict, prepare_site

SMALL_NETWORK = 2_000_000  # parameters


@contextlib.contextmanager
def _threads_for(module, device: torch.device):
    """Small networks on CPU train several times faster on one thread (per-op overhead
    dominates and threads contend); big ones keep torch's default."""
    small = device.type == "cpu" and sum(p.numel() for p in module.parameters()) < SMALL_NETWORK
    before = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _n_layers(runner) -> int:
    return int(runner.n_layers)


def _spec_errors(plan, fn):
    """Site problems found while planning (layer out of range, unknown position) as SpecErrors."""
    try:
        return fn()
    except (ValueError, IndexError) as e:
        raise SpecError(f"cannot align: {e}", plan.pos) from e


def align_hypothesis(spec: Spec, hypothesis_name: str, *, device: Optional[str] = None, progress: bool = True,
                     seed: int = 0, overrides: Optional[Mapping[str, Any]] = None,
                     network: Optional[LoadedNetwork] = None) -> dict[str, Any]:
    """Run every alignment of one hypothesis (see module docstring).

    ``seed`` shifts data and training seeds; ``overrides`` replaces train/data options
    (e.g. ``{"samples": 200, "epochs": 1, "seeds": 1}``; ``"search": False`` drops the grid).
    ``network``: the hypothesis's network already loaded on ``device`` (the verify pipeline
    loads it once to fingerprint it for the results cache); loaded here when omitted.
    Raises SpecError for problems in the spec (bad options, unknown positions)."""
    t0 = time.time()
    timing: dict[str, float] = {}
    h = next((x for x in spec.hypotheses if x.name == hypothesis_name), None)
    if h is None:
        raise SpecError(f"no hypothesis named {hypothesis_name}",
                        hint="known: " + ", ".join(x.name for x in spec.hypotheses))
    plan = build_plan(h, overrides, seed=seed)
    model = spec.models[h.model]
    check_against_model(plan, model, h)
    model = memoized(model)  # same draws, far fewer evaluations
    dev = pick_device(device)

    net = network if network is not None else load_network(spec.networks[h.network], spec.path, dev)
    runner = make_runner(net.module)
    encoder = make_encoder(net, model)
    check_fits(net, model, encoder, runner)  # the builder's contract, failing at the `network` line
    timing["load"] = time.time() - t0

    t = time.time()
    sample_inputs = model.sample_inputs(64, seed=seed)
    contexts = {vp.name: VariableContext(runner, encoder, _n_layers(runner), {}, plan, vp, sample_inputs)
                for vp in plan.variables}
    groups = _spec_errors(plan, lambda: joint_groups(plan, contexts, lambda vp: align_site(contexts[vp.name])[0]))
    in_group = {n for g in groups for n in g.names}
    # a jointly aligned variable needs its own training pairs only for a search grid
    n_train = _spec_errors(plan, lambda: {n: plan.train.samples if n not in in_group or grid_axes(c)[0] else 0
                                          for n, c in contexts.items()})
    raw = {v.name: make_splits(model, v.name, n_train[v.name], plan.data.dev, plan.data.test, seed,
                               plan.data.balance, plan.data.informative) for v in plan.variables}
    splits = {name: {k: encode_pairs(ex, name, encoder) for k, ex in s.items() if k != "disjoint"}
              for name, s in raw.items()}
    for name, ctx in contexts.items():
        ctx.splits = splits[name]
    joint_raw, joint = {}, {}
    for g in groups:
        held = {pair_key(e) for n in g.names for k in ("dev", "test") for e in raw[n][k]}
        joint_raw[g.key] = make_joint_splits(model, g.names, plan.train.samples, plan.data.dev, plan.data.test,
                                             seed, held, plan.data.balance, plan.data.informative)
        joint[g.key] = {k: encode_joint(ex, g.names, encoder) for k, ex in joint_raw[g.key].items()
                        if k != "disjoint"}
    timing["data"] = time.time() - t

    # what each variable's intervention was trained on: isolate(A, B) is measured off it too
    trained_on = {name: {pair_key(e) for e in s["train"]} for name, s in raw.items()}
    for g in groups:
        keys = {pair_key(e) for e in joint_raw[g.key]["train"]}
        for name in g.names:
            trained_on[name] |= keys
    dataset = dataset_summary(raw)
    if groups:
        dataset["joint"] = {k: joint_summary(s) for k, s in joint_raw.items()}
        if dataset["train"] == 0:  # the first variable is trained only jointly
            dataset["train"] = len(joint_raw[groups[0].key]["train"])

    with _threads_for(net.module, dev):
        return _align(h, plan, model, net, runner, encoder, contexts, groups, joint, splits, dataset, progress,
                      seed, dev, timing, t0, trained_on)


def _align(h, plan, model, net, runner, encoder, contexts, groups, joint, splits, dataset, progress, seed, dev,
           timing, t0, trained_on) -> dict[str, Any]:
    bar = _progress_bar(plan, contexts, groups, progress)
    tick = lambda msg: (bar.update(1), bar.set_postfix_str(msg, refresh=False))  # noqa: E731
    in_group = {n for g in groups for n in g.names}
    result_vars: dict[str, Any] = {}
    best: dict[str, Any] = {}
    t = time.time()
    try:
        for vp in plan.variables:
            ctx = contexts[vp.name]
            ctx.tick = tick
            try:
                entry = run_variable(ctx, train_seeds=vp.name not in in_group)
            except (ValueError, IndexError) as e:
                raise SpecError(f"cannot align {vp.name}: {e}", vp.pos) from e
            if vp.name in in_group:
                result_vars[vp.name] = entry  # completed by the joint training below
                continue
            cell = entry.pop("_best_cell")
            best[vp.name] = (cell, ctx)
            controls: dict[str, Any] = {}
            tc = time.time()
            if "random_network" in plan.controls:
                controls["random_network"] = random_network_control(
                    net, encoder, cell.site, splits[vp.name]["train"], splits[vp.name]["test"],
                    vp.intervention, plan.train, plan.train.seeds[0])
                bar.update(1)
            if "random_rotation" in plan.controls:
                controls["random_rotation"] = random_rotation_result(
                    runner, encoder, ctx.data(cell.site, "test"), vp.intervention, plan.train.seeds[0])
            timing["controls"] = timing.get("controls", 0.0) + time.time() - tc
            if controls:
                entry["controls"] = controls
            result_vars[vp.name] = entry
        multi_joint = {}
        for g in groups:
            multi_joint[g.key] = _run_joint(g, plan, net, runner, encoder, joint[g.key], result_vars, best,
                                            timing, bar, tick)
        timing["search_and_train"] = time.time() - t - timing.get("controls", 0.0)
        t = time.time()
        multi = _multi(model, plan, encoder, runner, best, splits, seed, trained_on)
        if multi_joint:
            multi["joint"] = multi_joint
        timing["metrics"] = time.time() - t
    finally:
        bar.close()
    timing["total"] = time.time() - t0
    train = {"samples": plan.train.samples, "epochs": plan.train.epochs, "batch": plan.train.batch,
             "lr": plan.train.lr, "seeds": list(plan.train.seeds)}
    if plan.train.joint:
        train["joint"] = True
    return {
        "name": h.name, "model": h.model, "network": h.network,
        "network_fingerprint": net.fingerprint,
        "location": str(h.pos),
        "device": str(dev),
        "train": train,
        "dataset": dataset,
        "variables": result_vars,
        "multi": multi,
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "seconds": round(timing["total"], 2),
    }


def _run_joint(g, plan, net, runner, encoder, data, result_vars, best, timing, bar, tick) -> dict[str, Any]:
    """Train one group jointly, fill its variables' entries (and ``best``); the multi.joint entry."""
    try:
        entries, multi_joint = run_group(g, runner, encoder, data, plan, tick)
    except (ValueError, IndexError) as e:
        raise SpecError(f"cannot align {g.key} jointly: {e}", g.variables[0].pos) from e
    tc = time.time()
    rn = None
    if "random_network" in plan.controls:
        rn = random_network_joint(net, encoder, g, data["train"], plan.train, plan.train.seeds[0])
        bar.update(1)
    for vp in g.variables:
        entry = entries[vp.name]
        cell = entry.pop("_best_cell")
        best[vp.name] = (cell, g.contexts[vp.name])
        controls: dict[str, Any] = {}
        if rn is not None:
            controls["random_network"] = rn[vp.name]
        if "random_rotation" in plan.controls:
            controls["random_rotation"] = random_rotation_result(
                runner, encoder, g.contexts[vp.name].data(g.site, "test"), vp.intervention, plan.train.seeds[0])
        grid_site = result_vars[vp.name]
        result_vars[vp.name] = {"intervention": entry["intervention"], "grid": grid_site["grid"],
                                "site": grid_site["site"], "seeds": entry["seeds"], "iia": entry["iia"],
                                "joint": entry["joint"], **({"controls": controls} if controls else {})}
        if grid_site["grid"] is not None:
            grid_site["grid"]["training"] = "separate"
    timing["controls"] = timing.get("controls", 0.0) + time.time() - tc
    return multi_joint


def _multi(model, plan, encoder, runner, best, splits, seed, trained_on) -> Optional[dict[str, Any]]:
    """cause(v) for every aligned variable (on its held-out test pairs); isolate(A, B) for every
    ordered pair, on pairs A's intervention was not trained on."""
    cause = {}
    for name, (cell, ctx) in best.items():
        test = splits[name]["test"]
        cause[name] = metric_entry(*count_correct(cell.test_pred, test.label, test.changed))
    isolate = {}
    names = list(best)
    for a in names:
        for b in names:
            if a == b:
                continue
            cell, _ = best[a]
            examples = isolate_pairs(model, a, b, plan.data.test, seed=seed * 1000 + 7, exclude=trained_on[a])
            if not examples:
                isolate[f"{a},{b}"] = metric_entry(0, 0)
                continue
            pairs = encode_pairs(examples, a, encoder)
            sd = prepare_site(runner, cell.site, pairs)
            isolate[f"{a},{b}"] = metric_entry(*count_correct(predict(runner, encoder, sd, cell.interv), sd.label))
    return {"cause": cause, "isolate": isolate}


def _progress_bar(plan, contexts, groups, enabled: bool):
    """One tick per trained/evaluated cell, per jointly trained seed and per trained control."""
    from tqdm.auto import tqdm
    in_group = {n for g in groups for n in g.names}
    total = 0
    for vp in plan.variables:
        layers, positions, _ = grid_axes(contexts[vp.name])
        if vp.name in in_group:
            total += len(layers) * len(positions)
            continue
        total += len(layers) * len(positions) + len(plan.train.seeds) - (1 if layers and vp.layer is None else 0)
        total += "random_network" in plan.controls
    total += len(groups) * (len(plan.train.seeds) + ("random_network" in plan.controls))
    return tqdm(total=total, desc=f"align {plan.hypothesis}", file=sys.stderr, disable=not enabled,
                unit="run", leave=False, dynamic_ncols=True)
