"""Turn a network's `device_map` option into what ``from_pretrained`` takes, refusing bad ones early.

Why here and not in the loader: every problem (a GPU the machine does not have, a block count
that does not match the model, accelerate missing) must be a located error at the option,
before any weight is read (see ``abstract/hypothesis/device_map.py`` for the syntax).
"""
from __future__ import annotations

import importlib.util
from typing import Any, Optional, Union

from ..device import device_problem
from ..hypothesis.device_map import STRATEGIES, block_devices, devices, parse_device_map
from ..language import ast
from ..language.errors import SpecError

INSTALL_HINT = "pip install 'abstract[multi-device]' (or: pip install accelerate)"


def hf_device_map(decl: ast.NetworkDecl, source: str, load_kwargs: dict[str, Any]
                  ) -> Optional[Union[str, dict[str, str]]]:
    """The ``device_map`` argument for ``from_pretrained``, or None when the network has none."""
    opt = next((o for o in decl.options if o.key == "device_map"), None)
    if opt is None:
        return None
    value = [list(x) if isinstance(x, (list, tuple)) else x for x in opt.value] \
        if isinstance(opt.value, list) else opt.value
    try:
        dm = parse_device_map(value)
    except ValueError as e:
        raise SpecError(f"`device_map`: {e}", opt.pos) from e
    for d in devices(dm):
        problem = device_problem(d)
        if problem is not None:
            raise SpecError(f"`device_map` names device {d!r}: {problem}", opt.pos)
    if importlib.util.find_spec("accelerate") is None:
        raise SpecError("`device_map` needs the accelerate package, which is not installed", opt.pos,
                        hint=INSTALL_HINT)
    if isinstance(dm, str):
        return dm if dm in STRATEGIES else {"": dm}
    from transformers import AutoConfig
    from ..neural.architectures import ARCHITECTURES
    config = AutoConfig.from_pretrained(source, **load_kwargs)
    arch = ARCHITECTURES.get(getattr(config, "model_type", ""))
    if arch is None:
        raise SpecError(f"an explicit `device_map` needs a supported model family, not {config.model_type!r}",
                        opt.pos, hint="use device_map auto")
    per_block = block_devices(dm)
    n = int(config.num_hidden_layers)
    if len(per_block) != n:
        raise SpecError(f"`device_map` places {len(per_block)} blocks, but the model has {n}", opt.pos)
    return {"": per_block[0], **{f"{arch.blocks}.{i}": d for i, d in enumerate(per_block)},
            arch.final_norm: per_block[-1]}
