"""Where the blocks, sub-modules, final norm and head live in each supported model family.

Why a table: Hugging Face families name the same parts differently (``transformer.h`` vs
``model.layers``; ``attn`` vs ``self_attn``). Sites are written in one vocabulary, and this
module maps them onto the concrete modules of a given model object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """Attribute paths (dotted, relative to the model object) of one decoder-LM family."""

    family: str
    blocks: str
    attn: str
    mlp: str
    final_norm: str
    head: tuple[str, ...]  # candidate paths of the unembedding, first found wins (names moved across versions)
    # Gemma-2 style tanh capping of the final logits (config attribute name), if any.
    logit_softcap_attr: Optional[str] = None


GPT2 = ArchSpec("gpt2", "transformer.h", "attn", "mlp", "transformer.ln_f", ("lm_head",))
GPT_NEOX = ArchSpec("gpt_neox", "gpt_neox.layers", "attention", "mlp",
                    "gpt_neox.final_layer_norm", ("lm_head", "embed_out"))
LLAMA_LIKE = ArchSpec("llama", "model.layers", "self_attn", "mlp", "model.norm", ("lm_head",),
                      logit_softcap_attr="final_logit_softcapping")

# model_type -> spec. tests/neural runs the cached path of gpt2, gpt_neox, llama, qwen2, qwen3, mistral,
# gemma, gemma2, gemma3_text, granite, phi3 and olmo2 against the model's own forward (neural_testkit);
# other llama-layout models pass the structural check.
ARCHITECTURES = {
    "gpt2": GPT2,
    "gpt_neox": GPT_NEOX,
    **{t: LLAMA_LIKE for t in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2",
                               "gemma3_text", "phi3", "olmo", "olmo2", "granite", "smollm3")},
}


class UnsupportedModelError(ValueError):
    """The model's layout is not in the architecture table and could not be recognised."""


def get_module(root: nn.Module, path: str) -> nn.Module:
    """Resolve a dotted path (``"transformer.h.3"``, ``"net.0"``); '' is the root itself."""
    mod = root
    for part in [p for p in path.split(".") if p]:
        if isinstance(mod, (nn.ModuleList, nn.Sequential)) and part.lstrip("-").isdigit():
            mod = mod[int(part)]
        elif hasattr(mod, part):
            mod = getattr(mod, part)
        else:
            raise AttributeError(f"{type(root).__name__} has no sub-module {path!r} (failed at {part!r})")
    if not isinstance(mod, nn.Module):
        raise AttributeError(f"{path!r} is not a torch module")
    return mod


def get_module_list(root: nn.Module, path: str) -> nn.ModuleList | nn.Sequential:
    """The indexable list of modules at ``path`` (a model's blocks, a layer list)."""
    mod = get_module(root, path)
    if not isinstance(mod, (nn.ModuleList, nn.Sequential)):
        raise AttributeError(f"{path!r} is a {type(mod).__name__}, not a ModuleList or Sequential")
    return mod


def has_path(root: nn.Module, path: str) -> bool:
    try:
        get_module(root, path)
        return True
    except (AttributeError, IndexError):
        return False


def _fits(model: nn.Module, spec: ArchSpec) -> bool:
    if not (has_path(model, spec.blocks) and has_path(model, spec.final_norm)):
        return False
    try:
        blocks = get_module_list(model, spec.blocks)
    except AttributeError:
        return False
    return len(blocks) > 0 and has_path(blocks[0], spec.attn) and has_path(blocks[0], spec.mlp)


def detect_architecture(model: nn.Module) -> ArchSpec:
    """Find the :class:`ArchSpec` for a Hugging Face causal LM, by model_type then by layout."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    spec = ARCHITECTURES.get(model_type) if isinstance(model_type, str) else None
    if spec is not None and _fits(model, spec):
        return spec
    for candidate in (GPT2, GPT_NEOX, LLAMA_LIKE):
        if _fits(model, candidate):
            return candidate
    raise UnsupportedModelError(
        f"unsupported model {type(model).__name__} (model_type={model_type!r}): expected a causal LM "
        f"with the layout of GPT-2, GPT-NeoX/Pythia or Llama/Qwen2/Gemma/Mistral "
        f"(supported model_types: {', '.join(sorted(ARCHITECTURES))})")


def is_hf_lm(model: nn.Module) -> bool:
    """True if ``model`` looks like a supported Hugging Face decoder LM."""
    if getattr(model, "config", None) is None:
        return False
    try:
        detect_architecture(model)
        return True
    except UnsupportedModelError:
        return False


def torch_layer_paths(model: nn.Module, declared: Optional[Sequence[str]] = None) -> list[str]:
    """Module paths of the "layers" of a plain torch model; ``layer N`` = output of entry N.

    Resolution order (documented convention for spec authors):
      1. ``declared`` paths passed by the caller, or a ``model.abstract_layers`` list;
      2. a ``layers`` (or ``blocks``) ``ModuleList``/``Sequential`` attribute: each entry;
      3. the model itself being an ``nn.Sequential``: each child;
      4. a single ``nn.Sequential`` attribute (``net``, ``mlp`` ...): each of its children.
    For an MLP written as ``layers = ModuleList([Sequential(Linear, ReLU), ...])`` plus a
    ``head``, layer N is therefore the N-th hidden representation.
    """
    declared = declared if declared is not None else getattr(model, "abstract_layers", None)
    if declared is not None:
        for p in declared:
            get_module(model, p)
        return list(declared)
    for name in ("layers", "blocks"):
        seq = getattr(model, name, None)
        if isinstance(seq, (nn.ModuleList, nn.Sequential)):
            return [f"{name}.{i}" for i in range(len(seq))]
    if isinstance(model, nn.Sequential):
        return [str(i) for i in range(len(model))]
    seqs = [n for n, m in model.named_children() if isinstance(m, nn.Sequential)]
    if len(seqs) == 1:
        return [f"{seqs[0]}.{i}" for i in range(len(get_module_list(model, seqs[0])))]
    raise UnsupportedModelError(
        f"cannot tell the layers of {type(model).__name__}: give it a `layers` ModuleList, set "
        f"`abstract_layers = [module paths]`, or address sites by module path")
