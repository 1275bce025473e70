"""Site component names (torch-free, so `check` can validate them without loading torch).

* ``resid_pre``  -- the residual stream entering block ``layer``;
* ``resid_post`` -- the residual stream leaving block ``layer`` (alias ``block_output``);
* ``attn_out``   -- the output of block ``layer``'s attention sub-module;
* ``mlp_out``    -- the output of block ``layer``'s MLP sub-module.
"""
from __future__ import annotations

COMPONENTS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
COMPONENT_ALIASES = {
    "block_output": "resid_post",
    "block_input": "resid_pre",
    "attn_output": "attn_out",
    "mlp_output": "mlp_out",
    "output": "resid_post",
}


def canonical_component(name: str) -> str:
    """Map a component name or alias to its canonical spelling, or raise ``ValueError``."""
    key = name.strip().lower()
    key = COMPONENT_ALIASES.get(key, key)
    if key not in COMPONENTS:
        known = ", ".join(COMPONENTS + tuple(COMPONENT_ALIASES))
        raise ValueError(f"unknown site component {name!r}; expected one of: {known}")
    return key
