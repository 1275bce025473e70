"""Every hypothesis of a spec compiled at `check` time: networks, options, sites, encodings.

Called by the language compiler once the causal models are compiled; it needs no network and
no torch. Errors are appended to the caller's list so they are reported with all the others.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..language import ast
from ..language.errors import SpecError, SpecErrors
from .encoding import check_encoding
from .network import NetworkPlan, compile_network
from .plan import Plan, build_plan


def compile_networks(decls: tuple[ast.NetworkDecl, ...], errors: list[SpecError]) -> dict[str, NetworkPlan]:
    """The declarations that compile (the first of each name); problems go to `errors`."""
    out: dict[str, NetworkPlan] = {}
    seen: set[str] = set()
    for decl in decls:
        if decl.name in seen:
            continue  # the duplicate is reported by the compiler
        seen.add(decl.name)
        plan = compile_network(decl, errors)
        if plan is not None:
            out[decl.name] = plan
    return out


def compile_hypothesis(h: ast.HypothesisDecl, model: Any, networks: Mapping[str, NetworkPlan],
                       errors: list[SpecError]) -> Plan | None:
    """One hypothesis's plan against its model and network; None after recording errors."""
    network = networks.get(h.network)
    try:
        plan = build_plan(h, model=model, network=network)
    except SpecErrors as many:
        errors.extend(many.errors)
        return None
    except SpecError as err:
        errors.append(err)
        return None
    problem = check_encoding(h, plan, model, network)
    if problem is not None:
        errors.append(problem)
        return None
    return plan
