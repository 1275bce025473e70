"""The one declared table of hypothesis and network options.

Every option a spec may write -- on an `align` site, inside an intervention call, after
`search`, `train`, `data`, or in a `network` block -- is one `OptionSpec` row: its name,
section, value type, range, default, and which intervention kinds or network kinds accept it.
`plan.build_plan` and `network.compile_network` read options through this table only (no
hand-written per-option if-chains), `abstract check` reports anything the table refuses, and
docs/language.md's options table is checked against it by a test (`options_table_markdown`).

Torch-free on purpose: `abstract check` compiles every hypothesis without loading a network.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from ..language import ast
from ..language.errors import SpecError, did_you_mean
from .components import COMPONENTS, canonical_component

# sections
SITE, INTERVENTION, SEARCH, TRAIN, DATA, NETWORK = "site", "intervention", "search", "train", "data", "network"
HOLD = "hold"  # `hold ...`: sites kept at their base values (path patching; hypothesis/holds.py)
SECTIONS = (SITE, INTERVENTION, SEARCH, TRAIN, DATA, NETWORK, HOLD)

# network kinds as far as `check` can tell them apart without running a builder:
#   torch -- a plain module (`torch "f.py:fn"` without prompt/answer): activations are layer outputs;
#   lm    -- a language model (`hf "..."`, or a torch builder declared with prompt/answer).
TORCH, LM = "torch", "lm"
NETWORK_KINDS = (TORCH, LM)
DECLARED_KINDS = ("torch", "hf")  # what a `network` line may say

# intervention kinds; `trained` ones learn a basis or mask, the others are fixed interchanges
INTERVENTIONS: tuple[str, ...] = ("das", "lowrank", "boundless", "full", "neurons")
# bases other than a learned rotation (abstract/neural/featurizers.py)
INTERVENTIONS += ("pca", "sae", "mask")
GATES = ("sigmoid", "hard_concrete")  # mask(gate=...)
INTERVENTION_ALIASES = {"rotation": "das", "low_rank": "lowrank", "vector": "full", "interchange": "full"}
DEFAULT_INTERVENTION = "das"

# site components each network kind can honour (a plain module only exposes layer outputs)
COMPONENTS_BY_KIND: Mapping[str, tuple[str, ...]] = {TORCH: ("resid_post",), LM: COMPONENTS}
DTYPES = ("float32", "float16", "bfloat16", "float64")
ENCODERS = ("auto", "builder")


@dataclass(frozen=True)
class OptionSpec:
    """One option: where it is written, what it takes, and who accepts it."""

    name: str
    section: str
    type: str  # a key of PARSERS
    default: Any = None
    low: Optional[float] = None  # inclusive lower bound (numbers; for `layer`, every layer)
    low_open: bool = False  # the bound is exclusive (lr > 0)
    high: Optional[float] = None
    # who accepts it; () = all. Intervention section: intervention kinds. Site and search sections:
    # network kinds as check tells them apart (torch, lm). Network section: declared kinds (torch, hf).
    kinds: tuple[str, ...] = ()
    field: Optional[str] = None  # the plan field it fills (default: its name)
    positional: bool = False  # intervention options: may be written without `name=`
    doc: str = ""

    @property
    def target(self) -> str:
        return self.field or self.name

    def range_text(self) -> str:
        if self.low is None and self.high is None:
            return ""
        low = "" if self.low is None else f"{'>' if self.low_open else '>='} {_num(self.low)}"
        high = "" if self.high is None else f"<= {_num(self.high)}"
        return ", ".join(x for x in (low, high) if x)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


OPTIONS: tuple[OptionSpec, ...] = (
    # -- align V to <site>
    OptionSpec("layer", SITE, "layer", low=0, doc="the layer (block) index; 0 is the first layer"),
    OptionSpec("component", SITE, "component", doc="resid_pre, resid_mid, resid_post, attn_out, mlp_out, or per head "
               "head_out, q, k, v; resid_post when omitted, head_out when `head`/`heads` is given (plain torch "
               "networks: resid_post only, the layer output)"),
    OptionSpec("position", SITE, "position", kinds=(LM,), doc="last, first, a token index or a prompt-template "
               "slot name"),
    OptionSpec("head", SITE, "head", low=0, kinds=(LM,), doc="the attention head of a head component (head_out, "
               "q, k, v); k and v count key-value heads under grouped-query attention"),
    OptionSpec("heads", SITE, "head_group", kinds=(LM,), doc="a head group interchanged as one vector: [layer.head, "
               "...], e.g. [9.6, 9.9] (9.10 is head 10); several layers allowed; replaces `layer`"),
    # -- via <intervention>(...)
    OptionSpec("dim", INTERVENTION, "int", default=1, low=1, kinds=("das", "lowrank", "pca"), positional=True,
               doc="size of the learned subspace (pca: the top-k principal directions)"),
    OptionSpec("indices", INTERVENTION, "indices", kinds=("neurons",), positional=True,
               doc="the neuron indices interchanged, e.g. neurons(0, 1, 2)"),
    OptionSpec("path", INTERVENTION, "string", kinds=("sae",), positional=True,
               doc="the SAE's safetensors file (W_enc, b_enc, W_dec, b_dec), relative to the spec file"),
    OptionSpec("features", INTERVENTION, "features", kinds=("sae",), positional=True,
               doc="the SAE feature indices interchanged, e.g. features=[3, 17]"),
    OptionSpec("l0", INTERVENTION, "float", default=0.01, low=0, kinds=("mask",),
               doc="final weight of the sparsity penalty (ramps up from 0 over training)"),
    OptionSpec("gate", INTERVENTION, "gate", default="sigmoid", kinds=("mask",),
               doc="sigmoid (annealed temperature) or hard_concrete"),
    # -- search ...
    OptionSpec("layer", SEARCH, "layers", low=0, field="layers", doc="an int, a range a..b, a list or * (every layer); "
               "no search: only the align site (every layer when the align names none)"),
    OptionSpec("position", SEARCH, "positions", kinds=(LM,), field="positions",
               doc="a position, a list of them, or * (every token of the prompt)"),
    OptionSpec("component", SEARCH, "component", doc="the site component searched"),
    OptionSpec("head", SEARCH, "heads", low=0, kinds=(LM,), field="heads", doc="the heads searched: an int, a list "
               "or * (every head); * when the searched component is a head component and `head` is omitted"),
    OptionSpec("prescreen", SEARCH, "int", low=1, doc="train only the K grid cells an attribution pre-screen "
               "ranks best (one forward and backward per batch scores the whole grid)"),
    # -- train ...
    OptionSpec("samples", TRAIN, "int", default=2000, low=1, doc="training pairs per variable"),
    OptionSpec("epochs", TRAIN, "int", default=3, low=1),
    OptionSpec("batch", TRAIN, "int", default=64, low=1),
    OptionSpec("lr", TRAIN, "float", default=1e-3, low=0, low_open=True, doc="learning rate"),
    OptionSpec("seeds", TRAIN, "seeds", default=1, low=1, doc="a count (base..base+S-1) or a list of distinct ints"),
    OptionSpec("joint", TRAIN, "bool", default=False, doc="train das/lowrank variables at one site together"),
    # -- data ...
    OptionSpec("balance", DATA, "name", doc="a model variable whose values are drawn equally often"),
    OptionSpec("dev", DATA, "int", low=1, doc="dev pairs [min(2000, max(200, samples // 10))]"),
    OptionSpec("test", DATA, "int", low=1, doc="test pairs [as dev]"),
    OptionSpec("informative", DATA, "bool", default=False, doc="keep only pairs whose interchange changes the label"),
    OptionSpec("min_accuracy", DATA, "float", default=0.8, low=0, high=1, doc="the unmodified network's task "
               "accuracy below which the hypothesis errors before scoring (preflight; 0 for a network that is "
               "not meant to solve the task)"),
    # -- hold ...   (path patching)
    OptionSpec("component", HOLD, "components", field="components", doc="what is held: attn_out, mlp_out or a "
               "list of them (plain torch networks: resid_post, the layer output)"),
    OptionSpec("layer", HOLD, "layers", low=0, field="layers", doc="the layers whose components are held: an int, "
               "a range a..b or a list; each must come after every site the hypothesis aligns or searches"),
    OptionSpec("position", HOLD, "positions", kinds=(LM,), field="positions", doc="held only at these tokens "
               "(a position or a list); every token when omitted"),
    # -- network ... { }   (a torch builder receives every other option as a keyword argument)
    OptionSpec("prompt", NETWORK, "string", kinds=("torch", "hf"), doc="template rendering the inputs, e.g. "
               '"{a} + {b} ="; makes a torch builder a language model'),
    OptionSpec("answer", NETWORK, "string", kinds=("torch", "hf"), doc='verbalizer of the outputs, e.g. " {sum}"'),
    OptionSpec("render_only", NETWORK, "names", kinds=("torch", "hf"), doc="model variables the prompt renders "
               "that no output depends on (e.g. [place]): the `effective` check does not hold them to it"),
    OptionSpec("dtype", NETWORK, "dtype", kinds=("hf",), doc=", ".join(DTYPES)),
    OptionSpec("revision", NETWORK, "string", kinds=("hf",), doc="a Hub revision"),
    OptionSpec("device_map", NETWORK, "device_map", kinds=("hf",), doc="auto, a device, or [[device, blocks], ...] "
               "in block order: a model bigger than one device (needs accelerate)"),
    OptionSpec("encoder", NETWORK, "encoder", default="auto", kinds=("torch",),
               doc="auto: the builder's encode if it has one, else one-hot per input; "
                   "builder: the builder supplies encode (no one-hot size limit)"),
)


def options(section: str) -> dict[str, OptionSpec]:
    """The options of one section, by name."""
    return {o.name: o for o in OPTIONS if o.section == section}


def reserved_network_options() -> tuple[str, ...]:
    """Network options the engine reads itself (a torch builder is not passed them)."""
    return tuple(o.name for o in OPTIONS if o.section == NETWORK)


# ------------------------------------------------------------------ errors with a did-you-mean
def suggest(name: str, known: Iterable[str]) -> Optional[str]:
    """The closest known name, or None (bounded: see `language.errors.did_you_mean`)."""
    return did_you_mean(name, known)


def unknown_hint(name: str, known: Iterable[str]) -> Optional[str]:
    known = list(known)
    close = suggest(name, known)
    if close:
        return f"did you mean `{close}`?"
    return f"expected one of: {', '.join(known)}" if known and len(known) <= 12 else None


def key_pos(opt: ast.Option) -> ast.Pos:
    """The span of an option's key (the caret goes under the misspelt word, not its value)."""
    p = opt.pos
    if p.line < 1:
        return p
    return ast.Pos(p.file, p.line, p.column, p.line, p.column + len(opt.key))


# ------------------------------------------------------------------ value parsers
Parser = Callable[[OptionSpec, Any, ast.Pos], Any]


def _err(msg: str, pos: ast.Pos, hint: Optional[str] = None) -> SpecError:
    return SpecError(msg, pos, hint=hint)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bounded(spec: OptionSpec, v: float, pos: ast.Pos, what: str) -> None:
    below = spec.low is not None and (v <= spec.low if spec.low_open else v < spec.low)
    above = spec.high is not None and v > spec.high
    if below or above:
        raise _err(f"`{spec.name}` needs {what} {spec.range_text()}, got {_show(v)}", pos)


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, ast.Range):
        return f"{v.low}..{v.high}"
    if isinstance(v, ast.AllValues):
        return "*"
    if isinstance(v, ast.CallValue):
        return f"{v.name}(...)"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return repr(v) if isinstance(v, str) else str(v)


def parse_int(spec: OptionSpec, v: Any, pos: ast.Pos) -> int:
    if not _is_int(v):
        raise _err(f"`{spec.name}` needs an integer {spec.range_text()}, got {_show(v)}".rstrip(), pos)
    _bounded(spec, v, pos, "an integer")
    return v


def parse_float(spec: OptionSpec, v: Any, pos: ast.Pos) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise _err(f"`{spec.name}` needs a number {spec.range_text()}, got {_show(v)}".rstrip(), pos)
    _bounded(spec, v, pos, "a number")
    return float(v)


def parse_bool(spec: OptionSpec, v: Any, pos: ast.Pos) -> bool:
    if not isinstance(v, bool):
        raise _err(f"`{spec.name}` needs true or false, got {_show(v)}", pos)
    return v


def parse_name(spec: OptionSpec, v: Any, pos: ast.Pos) -> str:
    if not isinstance(v, str):
        raise _err(f"`{spec.name}` needs a variable name, got {_show(v)}", pos)
    return v


def parse_names(spec: OptionSpec, v: Any, pos: ast.Pos) -> tuple[str, ...]:
    items = v if isinstance(v, list) else [v]
    if not items or not all(isinstance(x, str) for x in items):
        raise _err(f"`{spec.name}` needs variable names, e.g. [place, article], got {_show(v)}", pos)
    return tuple(items)


def parse_string(spec: OptionSpec, v: Any, pos: ast.Pos) -> str:
    if not isinstance(v, str):
        raise _err(f'`{spec.name}` needs a string "...", got {_show(v)}', pos)
    return v


def _choice(spec: OptionSpec, v: Any, pos: ast.Pos, choices: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in choices:
        raise _err(f"`{spec.name}` must be one of {', '.join(choices)}, got {_show(v)}", pos,
                   hint=unknown_hint(v, choices) if isinstance(v, str) else None)
    return v


def parse_layer(spec: OptionSpec, v: Any, pos: ast.Pos) -> int:
    if not _is_int(v):
        raise _err(f"`layer` of an align must be one integer, got {_show(v)}", pos,
                   hint="use `search layer a..b` to try several")
    _check_layer(v, pos)
    return v


def _check_layer(layer: int, pos: ast.Pos) -> None:
    if layer < 0:
        raise _err(f"layer {layer} is negative: layers count from 0 (the first layer)", pos,
                   hint="write the layer's index from the start, e.g. `layer 0`; `search layer *` tries every layer")


def parse_layers(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, ast.AllValues):
        return "*"
    if isinstance(v, ast.Range):
        if v.high < v.low:
            raise _err(f"empty layer range {v.low}..{v.high}", pos, hint="a range low..high needs low <= high")
        _check_layer(v.low, pos)
        return tuple(range(v.low, v.high + 1))
    items = v if isinstance(v, list) else [v]
    if not items or not all(_is_int(x) for x in items):
        raise _err(f"`layer` must be an int, a range a..b, a list or *, got {_show(v)}", pos)
    for x in items:
        _check_layer(x, pos)
    if len(set(items)) < len(items):
        raise _err(f"`layer` lists a layer twice: {_show(v)}", pos)
    return tuple(items)


def parse_position(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _err(f"`position` must be `last`, `first`, a token index or a template slot name, got {_show(v)}", pos)
    return v


def parse_positions(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, ast.AllValues):
        return "*"
    items = v if isinstance(v, list) else [v]
    if not items:
        raise _err("`position` needs at least one position", pos)
    return tuple(parse_position(spec, x, pos) for x in items)


def parse_component(spec: OptionSpec, v: Any, pos: ast.Pos) -> str:
    if not isinstance(v, str):
        raise _err(f"`component` must be a name such as resid_post, got {_show(v)}", pos)
    try:
        return canonical_component(v)
    except ValueError as e:
        from .components import COMPONENT_ALIASES
        raise _err(str(e).split(";")[0], pos, hint=unknown_hint(v, COMPONENTS + tuple(COMPONENT_ALIASES))) from None


def parse_components(spec: OptionSpec, v: Any, pos: ast.Pos) -> tuple[str, ...]:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise _err(f"`{spec.name}` needs at least one component", pos)
    out = tuple(parse_component(spec, x, pos) for x in items)
    if len(set(out)) < len(out):
        raise _err(f"`{spec.name}` lists a component twice: {_show(v)}", pos)
    return out


def parse_head(spec: OptionSpec, v: Any, pos: ast.Pos) -> int:
    if not _is_int(v) or v < 0:
        raise _err(f"`head` of an align must be one head index (0, 1, ...), got {_show(v)}", pos,
                   hint="use `search head [..]` or `search head *` to try several, `heads [L.H, ...]` for a group")
    return v


def parse_heads(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, ast.AllValues):
        return "*"
    if isinstance(v, ast.Range):
        if v.high < v.low or v.low < 0:
            raise _err(f"bad head range {v.low}..{v.high}", pos, hint="a range low..high needs 0 <= low <= high")
        return tuple(range(v.low, v.high + 1))
    items = v if isinstance(v, list) else [v]
    if not items or not all(_is_int(x) and x >= 0 for x in items):
        raise _err(f"`head` must be a head index, a range a..b, a list of them or *, got {_show(v)}", pos)
    if len(set(items)) < len(items):
        raise _err(f"`head` lists a head twice: {_show(v)}", pos)
    return tuple(items)


def parse_head_group(spec: OptionSpec, v: Any, pos: ast.Pos) -> tuple[tuple[int, int], ...]:
    """`heads [9.6, 9.10]` -> ((9, 6), (9, 10)), read from each entry's spelling."""
    items = v if isinstance(v, list) else [v]
    out: list[tuple[int, int]] = []
    for x in items:
        text = getattr(x, "text", None)
        parts = text.split(".") if isinstance(text, str) else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise _err(f"`heads` entry {_show(x)} is not layer.head", pos,
                       hint="write each head as layer.head, e.g. `heads [9.6, 9.9]` (9.10 is layer 9, head 10)")
        pair = (int(parts[0]), int(parts[1]))
        if pair in out:
            raise _err(f"`heads` lists head {text} twice", pos)
        out.append(pair)
    if not out:
        raise _err("`heads` needs at least one layer.head entry, e.g. `heads [9.6, 9.9]`", pos)
    return tuple(out)


def parse_seeds(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, list):
        if not v or not all(_is_int(s) for s in v):
            raise _err("`seeds` must be a count or a list of integers", pos)
        dup = next((s for i, s in enumerate(v) if s in v[:i]), None)
        if dup is not None:
            raise _err(f"`seeds` lists seed {dup} twice: its run would be counted twice in the mean", pos,
                       hint="list distinct seeds, or give a count")
        return tuple(v)
    return parse_int(spec, v, pos)


def parse_indices(spec: OptionSpec, v: Any, pos: ast.Pos) -> tuple[int, ...]:
    items = v if isinstance(v, list) else [v]
    if not items or not all(_is_int(i) and i >= 0 for i in items):
        raise _err("neurons(...) needs non-negative neuron indices, e.g. neurons(0, 1, 2)", pos)
    return tuple(items)


def parse_features(spec: OptionSpec, v: Any, pos: ast.Pos) -> tuple[int, ...]:
    items = v if isinstance(v, list) else [v]
    if not all(_is_int(i) and i >= 0 for i in items):
        raise _err(f"`{spec.name}` needs a list of non-negative feature indices, e.g. features=[3, 17], "
                   f"got {_show(v)}", pos)
    return tuple(sorted(set(items)))


def parse_device_map_option(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    from .device_map import parse_device_map
    try:
        return parse_device_map(v)
    except ValueError as e:
        raise _err(f"`{spec.name}`: {e}", pos, hint="e.g. device_map auto, or device_map [[\"cuda:0\", 12], "
                   "[\"cuda:1\", 12]]") from e


PARSERS: dict[str, Parser] = {
    "int": parse_int, "float": parse_float, "bool": parse_bool, "name": parse_name, "string": parse_string,
    "layer": parse_layer, "layers": parse_layers, "position": parse_position, "positions": parse_positions,
    "component": parse_component, "components": parse_components, "seeds": parse_seeds, "indices": parse_indices,
    "head": parse_head, "heads": parse_heads, "head_group": parse_head_group,
    "names": parse_names,
    "features": parse_features, "gate": lambda s, v, p: _choice(s, v, p, GATES),
    "device_map": parse_device_map_option,
    "dtype": lambda s, v, p: _choice(s, v, p, DTYPES), "encoder": lambda s, v, p: _choice(s, v, p, ENCODERS),
}


def parse_value(spec: OptionSpec, v: Any, pos: ast.Pos) -> Any:
    return PARSERS[spec.type](spec, v, pos)


# ------------------------------------------------------------------ reading a section
def read_options(section: str, opts: Iterable[ast.Option], errors: list[SpecError], *,
                 kind: Optional[str] = None, what: Optional[str] = None, kind_text: Optional[str] = None,
                 allow_unknown: bool = False) -> dict[str, Any]:
    """Read `opts` of one section through the table into {target field: value}; every problem is
    appended to `errors` (located at the option). `kind` is the network kind the options apply to:
    an option whose `kinds` exclude it is refused. `allow_unknown`: keep unknown options as they
    are (a torch builder's own keyword arguments)."""
    table = options(section)
    out: dict[str, Any] = {}
    seen: dict[str, ast.Pos] = {}
    label = what or section
    for opt in opts:
        spec = table.get(opt.key)
        if spec is None:
            if allow_unknown:
                out.setdefault("__extra__", {})[opt.key] = opt.value
                continue
            errors.append(_err(f"unknown {label} option `{opt.key}`", key_pos(opt), hint=unknown_hint(opt.key, table)))
            continue
        if opt.key in seen:
            errors.append(SpecError(f"{label} option `{opt.key}` is given twice", key_pos(opt),
                                    notes=(("first given here", seen[opt.key]),)))
            continue
        seen[opt.key] = opt.pos
        if kind is not None and spec.kinds and kind not in spec.kinds:
            errors.append(_err(f"`{opt.key}` cannot be used on {kind_text or describe_kind(kind)}", key_pos(opt),
                               hint=kind_hint(spec, kind)))
            continue
        try:
            out[spec.target] = parse_value(spec, opt.value, opt.pos)
        except SpecError as e:
            errors.append(e)
    return out


def describe_kind(kind: str) -> str:
    return {TORCH: "a plain torch network (its sites are layer outputs, one vector per example)",
            LM: "a language-model network"}.get(kind, kind)


def kind_hint(spec: OptionSpec, kind: str) -> Optional[str]:
    if spec.name == "position" and kind == TORCH:
        return "a plain torch network has no token positions; declare prompt/answer for a language model"
    return f"`{spec.name}` applies to: {', '.join(spec.kinds)}"


def options_table_markdown() -> str:
    """docs/language.md's options table, written from OPTIONS (a test keeps the two equal)."""
    rows = ["| section | option | type | range | default | accepted by | meaning |",
            "|---|---|---|---|---|---|---|"]
    for o in OPTIONS:
        default = "" if o.default is None else f"`{_show(o.default)}`"
        rows.append(f"| {o.section} | `{o.name}` | {o.type} | {o.range_text()} | {default} | "
                    f"{', '.join(o.kinds) or 'all'} | {o.doc} |")
    return "\n".join(rows)
