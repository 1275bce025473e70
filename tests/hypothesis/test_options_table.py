"""The options table is the one source: the plan's fields, its defaults and the documentation
all follow it."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from abstract.hypothesis import options as opt
from abstract.hypothesis.plan import DataPlan, SearchPlan, TrainPlan, VariablePlan, build_plan
from abstract.language import parse_text

ROOT = Path(__file__).resolve().parents[2]
PLAN_OF = {opt.SITE: VariablePlan, opt.TRAIN: TrainPlan, opt.DATA: DataPlan, opt.SEARCH: SearchPlan}


def test_every_option_has_a_parser_a_known_section_and_known_kinds():
    for o in opt.OPTIONS:
        assert o.type in opt.PARSERS, o
        assert o.section in opt.SECTIONS, o
        known = {opt.INTERVENTION: opt.INTERVENTIONS, opt.NETWORK: opt.DECLARED_KINDS}.get(o.section, opt.NETWORK_KINDS)
        assert set(o.kinds) <= set(known), o


@pytest.mark.parametrize("section", sorted(PLAN_OF))
def test_every_option_fills_a_plan_field(section):
    fields = {f.name for f in dataclasses.fields(PLAN_OF[section])}
    for o in opt.options(section).values():
        assert o.target in fields, o


def test_train_defaults_are_the_tables():
    h = parse_text("hypothesis h : M ~ n {\n  align x\n}\n").hypotheses[0]
    plan = build_plan(h)
    for o in opt.options(opt.TRAIN).values():
        value = getattr(plan.train, o.target)
        assert value == (tuple(range(o.default)) if o.name == "seeds" else o.default), o


def _example(o: opt.OptionSpec) -> str:
    return {"int": "7", "float": "0.5", "bool": "true", "name": "x", "layer": "1", "layers": "0..2",
            "position": "last", "positions": "[last, 0]", "component": "head_out", "seeds": "[1, 2]",
            "head": "2", "heads": "[0, 1]", "head_group": "[9.6, 9.10]"}[o.type]


@pytest.mark.parametrize("section", [opt.TRAIN, opt.DATA, opt.SEARCH])
def test_every_option_of_a_section_is_accepted_with_a_good_value(section):
    written = ", ".join(f"{o.name} {_example(o)}" for o in opt.options(section).values())
    h = parse_text(f"hypothesis h : M ~ n {{\n  align x\n  {section} {written}\n}}\n").hypotheses[0]
    plan = build_plan(h)
    part = {opt.TRAIN: plan.train, opt.DATA: plan.data, opt.SEARCH: plan.search}[section]
    for o in opt.options(section).values():
        assert getattr(part, o.target) is not None, o


def test_plain_torch_networks_accept_only_layer_outputs():
    assert opt.COMPONENTS_BY_KIND[opt.TORCH] == ("resid_post",)
    assert opt.options(opt.SITE)["position"].kinds == (opt.LM,)


def test_docs_options_table_is_generated_from_the_table():
    doc = (ROOT / "docs" / "language.md").read_text()
    found = re.search(r"<!-- options:begin -->\n(.*?)\n<!-- options:end -->", doc, re.S)
    assert found, "docs/language.md lost its options table markers"
    assert found.group(1) == opt.options_table_markdown(), (
        "docs/language.md's options table differs from abstract/hypothesis/options.py: regenerate it with "
        "options_table_markdown()")


def test_engine_reserved_network_options_are_the_tables():
    assert set(opt.reserved_network_options()) == {"prompt", "answer", "dtype", "revision", "encoder",
                                                     "render_only", "device_map"}
