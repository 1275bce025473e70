"""A `network` declaration compiled as far as it can be known without running its builder.

`check` never executes a builder, so what it knows is the declaration: `hf` or `torch`, the
options the engine reads itself (prompt, answer, dtype, revision, encoder; see options.py), and
the builder's own keyword arguments (passed through unchecked). From that it decides the
network kind the hypothesis options are checked against: a language model (`hf`, or a torch
builder declared with prompt/answer) or a plain torch module (layer outputs only).
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any, Optional

from ..language import ast
from ..language.errors import SpecError
from .options import DECLARED_KINDS, LM, NETWORK, TORCH, read_options, suggest


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    declared: str  # "torch" | "hf"
    source: str
    kind: str  # TORCH (plain module) | LM
    prompt: Optional[str] = None
    answer: Optional[str] = None
    dtype: Optional[str] = None
    revision: Optional[str] = None
    encoder: str = "auto"
    device_map: Any = None  # a placement strategy, one device, or ((device, blocks), ...) (hypothesis/device_map.py)
    builder_options: dict[str, Any] = field(default_factory=dict)
    pos: ast.Pos = ast.NOWHERE
    render_only: tuple[str, ...] = ()  # prompt slots exempt from the `effective` check

    @property
    def prompt_slots(self) -> tuple[str, ...]:
        return template_slots(self.prompt or "")

    @property
    def answer_slots(self) -> tuple[str, ...]:
        return template_slots(self.answer or "")


def template_slots(template: str) -> tuple[str, ...]:
    """The `{name}` slots of a prompt or answer template, in order (ValueError if malformed)."""
    return tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))


def compile_network(decl: ast.NetworkDecl, errors: list[SpecError]) -> Optional[NetworkPlan]:
    """Read a declaration's options through the table; problems go to `errors`."""
    if decl.kind not in DECLARED_KINDS:
        close = suggest(decl.kind, DECLARED_KINDS)
        errors.append(SpecError(f"unknown network kind '{decl.kind}'", decl.pos,
                                hint=f"did you mean `{close}`?" if close else
                                'expected `torch "file.py:function"` or `hf "model-name-or-path"`'))
        return None
    n = len(errors)
    values = read_options(NETWORK, decl.options, errors, kind=decl.kind, kind_text=f"a `{decl.kind}` network",
                          allow_unknown=decl.kind == "torch")
    extra = values.pop("__extra__", {})
    if decl.kind == "torch":
        file, _, fn = decl.source.rpartition(":")
        if not file or not fn.isidentifier():
            errors.append(SpecError(f'torch network source "{decl.source}" must be "path/file.py:function"', decl.pos))
    for key in ("prompt", "answer"):
        if key in values:
            try:
                template_slots(values[key])
            except ValueError as e:
                opt = next(o for o in decl.options if o.key == key)
                errors.append(SpecError(f"`{key}` template is malformed: {e}", opt.pos,
                                        hint="slots are {name}; write {{ and }} for literal braces"))
    has = {k for k in ("prompt", "answer") if k in values}
    if decl.kind == "hf" and len(has) < 2 or decl.kind == "torch" and len(has) == 1:
        missing = " and ".join(f"`{k}`" for k in ("prompt", "answer") if k not in has)
        errors.append(SpecError(f"language-model network '{decl.name}' needs {missing}", decl.pos,
                                hint='e.g. { prompt "{a} + {b} =", answer " {sum}" }: the prompt renders the inputs, '
                                     "the answer the outputs"))
    for name in values.get("render_only", ()):  # only what the prompt renders can be render-only
        if "prompt" in values and name not in template_slots(values["prompt"]) or "prompt" not in values:
            opt = next(o for o in decl.options if o.key == "render_only")
            errors.append(SpecError(f"render_only: the prompt does not render `{name}`", opt.pos,
                                    hint="render_only names variables that appear as {slots} in this network's "
                                         "prompt and affect no output"))
    if len(errors) > n:
        return None
    kind = LM if decl.kind == "hf" or has else TORCH
    if kind == LM and values.get("encoder", "auto") != "auto":
        opt = next(o for o in decl.options if o.key == "encoder")
        errors.append(SpecError("`encoder` applies to plain torch networks; a language model is fed its prompt",
                                opt.pos))
        return None
    return NetworkPlan(decl.name, decl.kind, decl.source, kind, builder_options=extra, pos=decl.pos, **values)
