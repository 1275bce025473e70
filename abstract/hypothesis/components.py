"""Site component names (torch-free, so `check` can validate them without loading torch).

* ``resid_pre``  -- the residual stream entering block ``layer``;
* ``resid_post`` -- the residual stream leaving block ``layer`` (alias ``block_output``);
* ``attn_out``   -- the output of block ``layer``'s attention sub-module;
* ``mlp_out``    -- the output of block ``layer``'s MLP sub-module;
* ``resid_mid``  -- the residual stream between block ``layer``'s attention and its MLP
  (resid_pre + the attention's contribution; what the MLP branch reads); refused on
  parallel-residual blocks (GPT-NeoX/Pythia with ``use_parallel_residual``), which have none;
* ``head_out``   -- one attention head's output: the input of the attention output projection,
  split into heads (``[.., n_heads, head_dim]``), at head ``head``;
* ``q``, ``k``, ``v`` -- one head's query / key / value projection output (before rotary and
  any q/k norm); with grouped-query attention ``k``/``v`` heads index the key-value heads.
"""
from __future__ import annotations

COMPONENTS = ("resid_pre", "resid_post", "attn_out", "mlp_out", "resid_mid", "head_out", "q", "k", "v")
# components addressed per attention head (a site on them needs `head` or `heads`)
HEAD_COMPONENTS = ("head_out", "q", "k", "v")
# components whose heads are the key-value heads under grouped-query attention
KV_COMPONENTS = ("k", "v")
COMPONENT_ALIASES = {
    "block_output": "resid_post",
    "block_input": "resid_pre",
    "attn_output": "attn_out",
    "mlp_output": "mlp_out",
    "output": "resid_post",
    "head": "head_out",
    "head_output": "head_out",
    "z": "head_out",
    "query": "q",
    "key": "k",
    "value": "v",
}


def is_head_component(name: str) -> bool:
    """True for components addressed per attention head (``head_out``, ``q``, ``k``, ``v``)."""
    return canonical_component(name) in HEAD_COMPONENTS


def canonical_component(name: str) -> str:
    """Map a component name or alias to its canonical spelling, or raise ``ValueError``."""
    key = name.strip().lower()
    key = COMPONENT_ALIASES.get(key, key)
    if key not in COMPONENTS:
        known = ", ".join(COMPONENTS + tuple(COMPONENT_ALIASES))
        raise ValueError(f"unknown site component {name!r}; expected one of: {known}")
    return key
