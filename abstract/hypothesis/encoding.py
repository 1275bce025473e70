"""What a plain torch network's default input encoding costs, known before any network loads.

The engine's default encoder (`engine/encoders.py`, `TorchEncoder._one_hot`) one-hot encodes
each input over its domain and concatenates them, as float32, for every base and source of
every pair drawn (train, dev, test, per variable). A domain of a million values times tens of
thousands of pairs is gigabytes: `check` refuses that up front, pointing at the hypothesis,
instead of the engine running out of memory after loading the network.
"""
from __future__ import annotations

from typing import Any, Optional

from ..language import ast
from ..language.errors import SpecError
from .network import NetworkPlan
from .options import TORCH
from .plan import Plan

BYTES_PER_VALUE = 4  # float32
MAX_ONE_HOT_BYTES = 1 << 30  # 1 GiB of encoded inputs for one hypothesis


def one_hot_width(model: Any) -> int:
    """Columns of the default encoding: the sum of the input domains' sizes (not enumerated)."""
    return sum(len(model.domain(n)) for n in model.inputs)


def encoded_rows(plan: Plan) -> int:
    """Rows the engine encodes: a base and a source per pair, per variable, over train+dev+test;
    joint training adds multi-source pairs (a base and one source per variable)."""
    per_pair = plan.train.samples + plan.data.dev + plan.data.test
    rows = 2 * per_pair * len(plan.variables)
    if plan.train.joint and len(plan.variables) > 1:
        rows += (1 + len(plan.variables)) * per_pair
    return rows


def one_hot_bytes(plan: Plan, model: Any) -> int:
    return one_hot_width(model) * encoded_rows(plan) * BYTES_PER_VALUE


def _size(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):,.1f} MiB"


def check_encoding(h: ast.HypothesisDecl, plan: Plan, model: Any, network: Optional[NetworkPlan],
                   limit: int = MAX_ONE_HOT_BYTES) -> Optional[SpecError]:
    """A located error when the default one-hot encoding would exceed ``limit`` bytes."""
    if network is None or network.kind != TORCH or network.encoder == "builder":
        return None
    need = one_hot_bytes(plan, model)
    if need <= limit:
        return None
    samples = next((o for o in h.train if o.key == "samples"), None)
    where = samples.pos if samples is not None else h.pos
    width, rows = one_hot_width(model), encoded_rows(plan)
    return SpecError(
        f"the default one-hot input encoding of network '{network.name}' would need {_size(need)} for hypothesis "
        f"'{h.name}' ({width:,} columns x {rows:,} encoded inputs x {BYTES_PER_VALUE} bytes; at most {_size(limit)})",
        where, hint="give the network an encoder: return (module, encode) from the builder, or a module with an "
                    "`encode` method, and declare `encoder builder` in its options; or draw fewer pairs",
        notes=(("the network is declared here", network.pos),))
