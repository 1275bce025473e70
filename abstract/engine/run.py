"""One run of one hypothesis, phase by phase, into a typed :class:`HypothesisResult`.

Phases (each timed; the progress bar shows the current one):

* ``load``: the plan, the causal model, the device, the network, its runner and encoder;
* ``sites``: every variable's grid and align site, resolved and checked against the network
  (``sites.py``), and the jointly trained groups -- what data to draw depends on them;
* ``preflight``: the network must be fit to be scored (``preflight.py``: finite logits and
  activations, task accuracy, identity interchange, an encoder that tells inputs apart), and
  every site is tested for triviality (``trivial.py``: realised by swapping the variable's
  input ancestors; such a site is flagged and a search does not choose it);
* ``data``: *all* pairs, drawn and encoded at once: per variable train/dev/test, each joint
  group's multi-source splits, the isolate pairs of every ordered pair of variables;
* ``train``: the site search and every seed at the reported site, per variable
  (``search.py``), then each joint group (``joint.py``); cells are scored on dev and test;
  the searches' cells are planned as data and run by an executor first (``abstract.executors``:
  in process by default, or on Ray workers), then ``run_variable`` finds them trained;
* ``measure``: cause and isolate from each variable's dev-chosen seed, and beside every figure
  what doing nothing (leaving the site as the base has it) scores on the same pairs;
* ``controls``: random network and random rotation, on the same pairs and sites.

Each reported seed carries its diagnostics (loss curve, dev loss, train IIA, converged;
``diagnostics.py``) and each variable a sample of the test pairs its judged seed gets wrong.

Judging the expectations is the verifier's (``abstract.verify.expectations``), on
``to_json()`` of the result. Every random draw comes from the run's named seed streams
(``abstract.seeds``) or from a training seed of the plan (``seeds`` in the spec).
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Any, Iterator, Mapping, Optional

import torch

from ..causal import CausalModel
from ..device import pick_device
from ..hypothesis.plan import Plan, build_plan
from ..language import Spec, ast
from ..language.errors import SpecError
from ..neural.hold import holding
from ..neural.runner import make_runner
from ..neural.sites import Site
from ..artifacts import InterventionStore
from ..seeds import SeedStreams
from .controls import random_network_control, random_rotation_result
from .controls import noise_result
from .effects import intervened, measure_effects, source_labels, source_log_probs
from .diagnostics import failing_pairs
from .data import PairSet, dataset_summary, shortfalls, encode_pairs, isolate_pairs, make_splits, memoized, pair_key
from .builder import check_fits
from .encoders import make_encoder
from .answers import answer_runner
from .errors import AlignmentError
from .holds import resolve_holds
from .joint import GroupOutcome, JointGroup, joint_groups, train_group
from .joint_data import JointPairSet, encode_joint, joint_summary, make_joint_splits
from .networks import LoadedNetwork, load_network
from .results import CellError
from .results import (ControlResult, Count, DatasetResult, HypothesisResult, JointMembership, MultiResult, SplitSizes,
                      TrainSettings, VariableResult)
from .results import Effects
from .search import Cell, SearchOutcome, VariableContext, best_cell, run_variable
from .sites import VariableSites, resolve_sites
from .preflight import PreflightError, PreflightReport, preflight
from .train import Unchanged, Unit, count_correct, describe, predict, prepare_site
from .trivial import trivial_variables

SMALL_NETWORK = 2_000_000  # parameters
EXAMPLES = 64  # sample inputs for resolving positions and showing their tokens


@contextlib.contextmanager
def threads_for(module: torch.nn.Module, device: torch.device) -> Iterator[None]:
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


class Phases:
    """Wall-clock time per named phase, and the progress bar (one tick per trained cell)."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled = label, enabled
        self.timing: dict[str, float] = {}
        self.bar: Any = None
        self.started = time.time()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.time()
        if self.bar is not None:
            self.bar.set_description_str(f"{self.label}: {name}", refresh=False)
        try:
            yield
        finally:
            self.timing[name] = self.timing.get(name, 0.0) + time.time() - t

    def open_bar(self, total: int) -> None:
        from tqdm.auto import tqdm
        self.bar = tqdm(total=total, desc=self.label, file=sys.stderr, disable=not self.enabled, unit="run",
                        leave=False, dynamic_ncols=True)

    def tick(self, msg: str = "") -> None:
        if self.bar is not None:
            self.bar.update(1)
            if msg:
                self.bar.set_postfix_str(msg, refresh=False)

    def close(self) -> dict[str, float]:
        if self.bar is not None:
            self.bar.close()
        self.timing["total"] = time.time() - self.started
        return self.timing


class HypothesisRun:
    """Everything one hypothesis's alignment needs and produces, walked phase by phase.

    ``seed`` is the run's base seed (data, controls and training seeds derive from it);
    ``overrides`` replaces train/data options (``{"samples": 200, "epochs": 1, "seeds": 1}``;
    ``"search": False`` drops the grid); ``network``: already loaded on ``device`` (the
    verifier loads it once to fingerprint it), else loaded here. Problems the user can fix
    in the spec are SpecErrors (AlignmentError for the engine's), located at the spec line.
    """

    def __init__(self, spec: Spec, hypothesis: str, *, device: Optional[str] = None, progress: bool = True,
                 seed: int = 0, overrides: Optional[Mapping[str, Any]] = None,
                 network: Optional[LoadedNetwork] = None, save_interventions: Optional[str] = None,
                 load_interventions: Optional[str] = None, executor: Any = None, cell_cache: Any = None):
        h = next((x for x in spec.hypotheses if x.name == hypothesis), None)
        if h is None:
            raise SpecError(f"no hypothesis named {hypothesis}",
                            hint="known: " + ", ".join(x.name for x in spec.hypotheses))
        self.spec, self.h = spec, h
        self.device_name, self.seed, self.overrides = device, seed, overrides
        self.network = network
        # the train phase's cells go to this executor (abstract.executors; None: in-process),
        # finished ones to this cell cache (None: none kept)
        self.executor, self.cell_cache = executor, cell_cache
        self.cell_errors: list[CellError] = []
        self.streams = SeedStreams(seed)
        self.phases = Phases(f"align {h.name}", progress)
        # filled by the phases
        self.plan: Plan
        self.model: CausalModel
        self.dev: torch.device
        self.net: LoadedNetwork
        self.runner: Any
        self.encoder: Any
        self.dataset: DatasetResult
        self.sites: dict[str, VariableSites] = {}
        self.groups: list[JointGroup] = []
        self.contexts: dict[str, VariableContext] = {}
        self.joint_pairs: dict[str, dict[str, JointPairSet]] = {}
        self.isolate: dict[tuple[str, str], Optional[PairSet]] = {}
        self.searches: dict[str, SearchOutcome] = {}
        self.group_outcomes: dict[str, GroupOutcome] = {}
        self.best: dict[str, Cell] = {}
        self.controls: dict[str, dict[str, ControlResult]] = {}
        self.trivial: dict[str, dict[Site, bool]] = {}
        self.preflight: Optional[PreflightReport] = None
        self.do_nothing: dict[str, Count] = {}
        # --save-interventions / --load-interventions (abstract.artifacts): the store is made in `load`
        self.interventions = ("save", save_interventions) if save_interventions else \
            ("load", load_interventions) if load_interventions else None
        self.store: Optional[InterventionStore] = None
        self.holds: list[Site] = []  # path patching: held at base in every intervened run
        self.effects: dict[str, Effects] = {}
        self.source_runs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # test pairs' source run, labels

    # ----- the run ------------------------------------------------------------------------
    def run(self) -> HypothesisResult:
        ph = self.phases
        try:
            with ph.phase("load"):
                self.load()
            with threads_for(self.net.module, self.dev):
                with ph.phase("sites"):
                    self.resolve_sites()
                with ph.phase("preflight"):
                    self.check_network()
                with ph.phase("data"):
                    self.draw_data()
                ph.open_bar(self._progress_total())
                with ph.phase("train"):
                    self.train()
                with ph.phase("measure"):
                    multi = self.measure()
                with ph.phase("controls"):
                    self.run_controls()
        finally:
            timing = ph.close()
        return self.result(multi, timing)

    @property
    def in_group(self) -> set[str]:
        return {n for g in self.groups for n in g.names}

    def load(self) -> None:
        h, spec = self.h, self.spec
        model = spec.models[h.model]
        self.plan = build_plan(h, self.overrides, seed=self.seed, model=model,
                               network=spec.network_plans.get(h.network))
        self.model = memoized(model)  # same draws, far fewer evaluations
        self.dev = pick_device(self.device_name)
        self.load_threads = torch.get_num_threads()  # what a remote worker builds the network with
        self.net = self.network if self.network is not None else load_network(spec.networks[h.network], spec.path,
                                                                               self.dev)
        self.runner = make_runner(self.net.module)
        self.encoder = make_encoder(self.net, self.model)
        self.runner = answer_runner(self.runner, self.encoder)  # multi-token answers: whole-sequence scores
        check_fits(self.net, self.model, self.encoder, self.runner)
        if self.interventions is not None:
            mode, folder = self.interventions
            self.store = InterventionStore(folder, mode, spec_sha256=spec.sha256, spec_path=spec.path,
                                           hypothesis=h.name, network=h.network,
                                           network_fingerprint=self.net.fingerprint, run_seed=self.seed, pos=h.pos,
                                           model=h.model, network_class=type(self.net.module).__name__)

    def resolve_sites(self) -> None:
        examples = self.model.sample_inputs(EXAMPLES, seed=self.streams.seed("sites/examples"))
        self.sites = resolve_sites(self.plan, self.h, self.runner, self.encoder, examples)
        self.groups = joint_groups(self.plan, self.sites)
        self.holds = resolve_holds(self.plan, self.runner, self.encoder, self.sites)
        self.runner = holding(self.runner, self.holds)

    def check_network(self) -> None:
        """Refuse a network unfit to be scored, then flag each variable's trivial sites."""
        own: dict[str, list[Site]] = {}
        for name, vs in self.sites.items():
            grid = vs.grid_sites()
            own[name] = list(dict.fromkeys(grid + ([vs.align_site] if vs.align_site is not None else [])))
        every = list(dict.fromkeys(s for sites in own.values() for s in sites))
        try:
            self.preflight = preflight(self.runner, self.encoder, self.model, every,
                                       seed=self.streams.seed("preflight"), min_accuracy=self.plan.data.min_accuracy)
        except PreflightError as e:
            raise AlignmentError(f"network {self.h.network} cannot be scored: {e}", self.h.pos,
                                 hint="fix the network (or its encoder); `data min_accuracy 0` accepts a network "
                                      "that is not meant to solve the task") from e
        by_site: dict[Site, list[str]] = {}
        for name, sites in own.items():
            for site in sites:
                by_site.setdefault(site, []).append(name)
        seed = self.streams.seed("trivial")
        for site, names in by_site.items():
            found = trivial_variables(self.runner, self.encoder, self.model, site, names, seed=seed)
            for name in names:
                self.trivial.setdefault(name, {})[site] = name in found

    def draw_data(self) -> None:
        """Every pair the run uses, drawn and encoded here (splits that are not needed -- the
        own training pairs of a jointly trained variable without a grid -- are not drawn)."""
        plan, model, enc, seed = self.plan, self.model, self.encoder, self.seed
        d = plan.data
        in_group = self.in_group
        raw = {}
        for vp in plan.variables:
            n_train = plan.train.samples if vp.name not in in_group or self.sites[vp.name].layers else 0
            raw[vp.name] = make_splits(model, vp.name, n_train, d.dev, d.test, seed, d.balance, d.informative)
            splits = {k: self._encoded(vp.name, k, ex, vp.pos)
                      for k, ex in raw[vp.name].items() if k != "disjoint" and (k != "train" or n_train)}
            self.contexts[vp.name] = VariableContext(self.runner, self.encoder, plan, self.sites[vp.name], splits,
                                                     trivial=self.trivial.get(vp.name, {}))
            self.contexts[vp.name].store = self.store
        trained_on = {name: {pair_key(e) for e in s["train"]} for name, s in raw.items()}
        joint_raw = {}
        for g in self.groups:
            held = {pair_key(e) for n in g.names for k in ("dev", "test") for e in raw[n][k]}
            joint_raw[g.key] = make_joint_splits(model, g.names, plan.train.samples, d.dev, d.test, seed, held,
                                                 d.balance, d.informative)
            self.joint_pairs[g.key] = {k: self._encoded(g.key, k, ex, g.variables[0].pos, g.names)
                                       for k, ex in joint_raw[g.key].items() if k != "disjoint"}
            keys = {pair_key(e) for e in joint_raw[g.key]["train"]}
            for name in g.names:
                trained_on[name] |= keys
        # isolate(A, B): on pairs A's intervention was not trained on
        names = [vp.name for vp in plan.variables]
        for a in names:
            for b in names:
                if a != b:
                    ex = isolate_pairs(model, a, b, d.test, seed=self.streams.seed("data/isolate", a, b),
                                       exclude=trained_on[a])
                    self.isolate[(a, b)] = encode_pairs(ex, a, enc) if ex else None
        summary = dataset_summary(raw)
        if self.groups and summary["train"] == 0:  # the first variable is trained only jointly
            summary["train"] = len(joint_raw[self.groups[0].key]["train"])
        self.dataset = DatasetResult(SplitSizes.from_summary(summary),
                                     {k: SplitSizes.from_summary(joint_summary(s)) for k, s in joint_raw.items()},
                                     shortfalls({**raw, **joint_raw}))

    def _encoded(self, name: str, split: str, examples: list, pos: ast.Pos, group: Optional[list[str]] = None):
        if not examples:
            raise AlignmentError(f"no {split} pairs could be drawn for {name}", pos,
                                 hint="with `data informative true` only pairs whose interchange changes the "
                                      "output count; the variable may never change it")
        if group is not None:
            return encode_joint(examples, group, self.encoder)
        return encode_pairs(examples, name, self.encoder)

    def execute_cells(self) -> None:
        """Plan the searches' cells as data and run them on the executor (``executors/sweep.py``);
        ``run_variable`` below then finds them trained."""
        from ..executors import LocalExecutor, Sweep
        self.cell_errors = Sweep(self, self.executor or LocalExecutor(), self.cell_cache).run_all()

    def train(self) -> None:
        self.execute_cells()
        in_group = self.in_group
        keep = "random_rotation" in self.plan.controls  # its test prefix, at the reported site
        for vp in self.plan.variables:
            ctx = self.contexts[vp.name]
            ctx.tick = self.phases.tick
            outcome = run_variable(ctx, train_seeds=vp.name not in in_group)
            self.searches[vp.name] = outcome
            if vp.name not in in_group:
                self.best[vp.name] = best_cell(outcome.cells)
            ctx.keep_only(outcome.site if keep else None, "test")
        for g in self.groups:
            out = train_group(g, self.runner, self.encoder, self.joint_pairs[g.key], self.contexts, self.plan,
                              self.phases.tick, store=self.store)
            self.group_outcomes[g.key] = out
            for name in g.names:
                self.best[name] = best_cell(out.cells[name])
                self.contexts[name].keep_only(g.site if keep else None, "test")

    def measure(self) -> MultiResult:
        """cause(v) on v's held-out test pairs; isolate(A, B) on the pairs drawn for it."""
        multi = MultiResult()
        nothing = Unchanged()
        baseline: dict[str, dict[str, Count]] = {"cause": {}, "isolate": {}, "joint": {}}
        for vp in self.plan.variables:
            ctx, cell = self.contexts[vp.name], self.best[vp.name]
            test = ctx.splits["test"]
            multi.cause[vp.name] = Count(*count_correct(cell.test_pred, test.label, test.changed))
            unchanged = predict(self.runner, self.encoder, ctx.data(cell.site, "test"), nothing)
            self.do_nothing[vp.name] = Count(*count_correct(unchanged, test.label))
            baseline["cause"][vp.name] = Count(*count_correct(unchanged, test.label, test.changed))
            self.source_runs[vp.name] = (source_log_probs(self.runner, self.encoder, test),
                                         source_labels(self.model, self.encoder, test))
            sd = ctx.data(cell.site, "test")
            self.effects[vp.name] = measure_effects(self.runner, self.encoder, sd, intervened(sd, cell.interv), test,
                                                    self.source_runs[vp.name])
        for (a, b), pairs in self.isolate.items():
            if pairs is None:
                multi.isolate[f"{a},{b}"] = Count(0, 0)
                continue
            cell = self.best[a]
            sd = prepare_site(self.runner, cell.site, pairs)
            multi.isolate[f"{a},{b}"] = Count(*count_correct(predict(self.runner, self.encoder, sd, cell.interv),
                                                             sd.label))
            baseline["isolate"][f"{a},{b}"] = Count(*count_correct(predict(self.runner, self.encoder, sd, nothing),
                                                                   sd.label))
        for key, out in self.group_outcomes.items():
            multi.joint[key] = out.joint
            g = next(g for g in self.groups if g.key == key)
            sd = prepare_site(self.runner, g.site, self.joint_pairs[key]["test"])
            baseline["joint"][key] = Count(*count_correct(predict(self.runner, self.encoder, sd, nothing), sd.label))
        multi.do_nothing = {k: v for k, v in baseline.items() if v}
        return multi

    def run_controls(self) -> None:
        plan = self.plan
        first = plan.train.seeds[0]
        self.controls = {vp.name: {} for vp in plan.variables}
        if "random_network" in plan.controls:
            network_seed = self.streams.seed("control/random_network", first)
            units: list[tuple[Unit, Any, Any]] = [
                (self.contexts[vp.name].unit, self.best[vp.name].site, self.contexts[vp.name].splits["train"])
                for vp in plan.variables if vp.name not in self.in_group]
            units += [(g.unit, g.site, self.joint_pairs[g.key]["train"]) for g in self.groups]
            for unit, site, train in units:
                tests = {n: self.contexts[n].splits["test"] for n in unit.names}
                found = random_network_control(self.net, self.encoder, unit, site, train, tests, plan.train, first,
                                               network_seed, {n: source_labels(self.model, self.encoder, tests[n])
                                                              for n in unit.names},
                                               wrap=lambda r: answer_runner(r, self.encoder),
                                               store=self.store, holds=self.holds)
                for name, result in found.items():
                    self.controls[name]["random_network"] = result
                self.phases.tick(f"random network {','.join(unit.names)}")
        if "random_rotation" in plan.controls:
            rotation_seed = self.streams.seed("control/random_rotation", first)
            for vp in plan.variables:
                ctx, cell = self.contexts[vp.name], self.best[vp.name]
                self.controls[vp.name]["random_rotation"] = random_rotation_result(
                    self.runner, self.encoder, ctx.data(cell.site, "test"), vp.intervention, rotation_seed,
                    changed=ctx.splits["test"].changed, pairs=ctx.splits["test"], src=self.source_runs.get(vp.name))
        if "noise" in plan.controls:
            for vp in plan.variables:
                ctx, cell = self.contexts[vp.name], self.best[vp.name]
                self.controls[vp.name]["noise"] = noise_result(
                    self.runner, self.encoder, ctx.data(cell.site, "test"), ctx.splits["test"],
                    self.streams.seed("control/noise", vp.name), src=self.source_runs.get(vp.name))

    # ----- the result ---------------------------------------------------------------------
    def result(self, multi: MultiResult, timing: dict[str, float]) -> HypothesisResult:
        plan, h = self.plan, self.h
        variables = {}
        for vp in plan.variables:
            search = self.searches[vp.name]
            cell = self.best[vp.name]
            g = next((g for g in self.groups if vp.name in g.names), None)
            cells = search.cells if g is None else self.group_outcomes[g.key].cells[vp.name]
            joint, grid = None, search.grid
            if g is not None:
                joint = JointMembership(tuple(g.names), self.group_outcomes[g.key].blocks[vp.name])
                if grid is not None:  # the grid came from training the variable on its own
                    grid = dataclasses.replace(grid, training="separate")
            test = self.contexts[vp.name].splits["test"]
            predicted = [self.encoder.classes.as_dict(int(i)) for i in cell.test_pred.tolist()]
            variables[vp.name] = VariableResult(describe(vp.intervention, cell.interv, cell.hidden), grid,
                                                search.site_ref, [c.score for c in cells], joint,
                                                self.controls[vp.name], self.do_nothing.get(vp.name),
                                                search.better_site,
                                                failing_pairs(test.examples, vp.name, predicted),
                                                effects=self.effects.get(vp.name))
        tp = plan.train
        return HypothesisResult(
            name=h.name, model=h.model, network=h.network, network_fingerprint=self.net.fingerprint,
            location=str(h.pos), device=str(self.dev),
            train=TrainSettings(tp.samples, tp.epochs, tp.batch, tp.lr, tuple(tp.seeds), tp.joint),
            dataset=self.dataset, variables=variables, multi=multi, timing=timing,
            preflight=self.preflight.to_json() if self.preflight is not None else None,
            holds=[x.to_json() for x in plan.holds] or None,
            cell_errors=list(self.cell_errors))

    def _progress_total(self) -> int:
        """One tick per trained/evaluated cell, per jointly trained seed and per trained control."""
        in_group = self.in_group
        rn = "random_network" in self.plan.controls
        seeds = len(self.plan.train.seeds)
        total = 0
        for vp in self.plan.variables:
            s = self.sites[vp.name]
            total += len(s.layers) * len(s.columns)
            if vp.name not in in_group:
                total += seeds - (1 if s.layers and s.align_site is None else 0) + rn
        return total + len(self.groups) * (seeds + rn)
