"""Causal-model inputs -> network inputs, and network outputs -> scores over output values.

Output classes are the output domain's values in order (several outputs: every combination,
first output slowest). A torch module must return ``[batch, n_classes]`` logits. A language
model is read through a *verbalizer*: the ``answer`` template rendered for each class (e.g.
``" {label}"`` -> ``" true"``), whose first token is that class's token; the class scores are
the next-token logits of those tokens at the last prompt token.

Prompt templates (``prompt "{a} + {b} ="``) may name any model variable (its value on the
rendered input); bools render as ``true``/``false``, enums as their member name. A site
position may be a template slot name: the *last* token of that slot's rendered text (the
first token, in a causal LM, that has seen the whole value), found in every prompt from the
tokenizer's character offsets -- so values of different token lengths are handled.

An answer that spans several tokens (for some class) is scored over its whole token sequence,
teacher-forced: the class score is the summed log-probability of the answer's tokens, and the
runner is wrapped to compute it (``engine/answers.py``). Answers are checked at the ``answer``
option: two classes may not tokenize alike, none may be a proper prefix of another, and an
answer must tokenize the same after every sampled prompt.

Prompts are padded on the right (absolute-position models such as GPT-2 would otherwise read
a left-padded prompt at shifted positions). Class tokens are read *in context*: the first
token after a rendered prompt of ``prompt + answer`` (SentencePiece tokenizers spell a
word differently at the start of a text than after one).
"""
from __future__ import annotations

import itertools
import string
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

import torch

from ..causal import CausalModel
from ..language import ast
from ..language.errors import SpecError
from ..neural.sites import NAMED_POSITIONS, SLOT_PREFIX, SiteError, resolve_positions
from .networks import LoadedNetwork

Input = Mapping[str, Any]


def render_value(v: Any) -> str:
    """A value as prompts and answers spell it (``true``/``false`` for bools)."""
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


class OutputClasses:
    """The class list of a model's outputs and the class index of an output assignment."""

    def __init__(self, model: CausalModel) -> None:
        self.outputs = list(model.outputs)
        self.domains = [model.domain(o) for o in self.outputs]
        self.values = list(itertools.product(*[d.values() for d in self.domains]))

    def __len__(self) -> int:
        return len(self.values)

    def index(self, out: Mapping[str, Any]) -> int:
        idx = 0
        for o, d in zip(self.outputs, self.domains):
            idx = idx * len(d) + d.index(out[o])
        return idx

    def as_dict(self, i: int) -> dict[str, Any]:
        return dict(zip(self.outputs, self.values[i]))


@runtime_checkable
class Encoder(Protocol):
    """What the engine may ask of an encoder; :class:`TorchEncoder` and :class:`LMEncoder` both are one.

    ``site_position`` maps a spec position to a :class:`~abstract.neural.sites.Site` position
    (``None`` for position-free networks); ``position_token`` names it for report axes.
    """

    uses_positions: bool
    classes: OutputClasses

    def encode(self, inputs: Sequence[Input]) -> Any: ...

    def logit_positions(self, encoded: Any) -> Optional[torch.Tensor]: ...

    def class_logits(self, out: Any) -> torch.Tensor: ...

    def class_log_probs(self, out: Any) -> torch.Tensor: ...

    def site_position(self, position: Any, inputs: Sequence[Input] = ()) -> Any: ...

    def position_token(self, position: Any, example: Optional[Input] = None) -> str: ...


class TorchEncoder:
    """Plain modules: ``encode(list_of_input_dicts)`` (the network's, or one-hot by default)."""

    uses_positions = False

    def __init__(self, net: LoadedNetwork, model: CausalModel) -> None:
        self.model, self.classes = model, OutputClasses(model)
        self._encode: Callable[[list[dict[str, Any]]], Any] = net.encode or self._one_hot

    def _one_hot(self, inputs: Sequence[Input]) -> torch.Tensor:
        cols = []
        for name in self.model.inputs:
            d = self.model.domain(name)
            idx = torch.tensor([d.index(x[name]) for x in inputs], dtype=torch.long)
            cols.append(torch.nn.functional.one_hot(idx, len(d)).float())
        return torch.cat(cols, dim=1)

    def encode(self, inputs: Sequence[Input]) -> Any:
        """The network's own ``encode`` (or one-hot) of the inputs, in the model's input order."""
        ordered = [{k: x[k] for k in self.model.inputs} for x in inputs]
        return self._encode(ordered)

    def logit_positions(self, encoded: Any) -> Optional[torch.Tensor]:
        """None: a plain module's output has no position axis."""
        return None

    def class_logits(self, out: Any) -> torch.Tensor:
        """The network's ``[batch, n_classes]`` logits, checked against the class count."""
        out = out.logits if hasattr(out, "logits") else out
        if out.dim() != 2 or out.shape[1] != len(self.classes):
            raise ValueError(f"the network returns outputs of shape {tuple(out.shape)}, but the model's "
                             f"outputs {self.classes.outputs} have {len(self.classes)} classes: expected "
                             f"[batch, {len(self.classes)}] logits")
        return out

    def class_log_probs(self, out: Any) -> torch.Tensor:
        """Log-softmax of the class logits: a classifier's distribution is over its classes."""
        return self.class_logits(out).float().log_softmax(-1)

    def site_position(self, position: Any, inputs: Sequence[Input] = ()) -> None:
        """None: sites of a plain module address the whole activation vector."""
        return None

    def position_token(self, position: Any, example: Optional[Input] = None) -> str:
        return "(whole vector)"


class LMEncoder:
    """Prompt template + verbalizer over a tokenizer (see module docstring)."""

    uses_positions = True

    def __init__(self, net: LoadedNetwork, model: CausalModel) -> None:
        opts, decl = net.options, net.decl
        pos = decl.pos if decl is not None else None
        if "prompt" not in opts or "answer" not in opts:
            raise SpecError(f"language-model network '{net.name}' needs `prompt \"...\"` and `answer \"...\"` "
                            "options", pos, hint='e.g. { prompt "{a} + {b} =", answer " {sum}" }')
        self.model, self.classes = model, OutputClasses(model)
        self.prompt, self.answer = str(opts["prompt"]), str(opts["answer"])
        self.tok = net.tokenizer
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token or self.tok.unk_token
        self.slots = [f for _, f, _, _ in string.Formatter().parse(self.prompt) if f]
        for f in self.slots:
            if f not in model.variables:
                raise SpecError(f"template slot {{{f}}} is not a variable of model {model.name}", pos,
                                hint="known: " + ", ".join(model.variables))
        for f in [f for _, f, _, _ in string.Formatter().parse(self.answer) if f]:
            if f not in model.outputs:
                raise SpecError(f"answer slot {{{f}}} is not an output of model {model.name}: the answer "
                                "renders the output values the network must predict", pos,
                                hint="outputs: " + ", ".join(model.outputs))
        at = answer_pos(net, pos)
        contexts = list(dict.fromkeys(self.render(x)[0] for x in model.sample_inputs(CONTEXTS, seed=0)))
        # every class's answer tokens, read in context (the same after every sampled prompt)
        self.answer_ids: list[list[int]] = [self._answer_tokens(i, contexts, at) for i in range(len(self.classes))]
        check_answers(self.answer_ids, [self.classes.as_dict(i) for i in range(len(self.classes))], self.tok, at)
        # multi-token answers are scored over their whole sequence (engine/answers.py wraps the runner)
        self.multi_token = any(len(ids) > 1 for ids in self.answer_ids)
        self.class_tokens: list[int] = [ids[0] for ids in self.answer_ids]
        self.class_tokens_t = torch.tensor(self.class_tokens)

    def _answer_tokens(self, i: int, contexts: Sequence[str], at: Optional[ast.Pos]) -> list[int]:
        """Class ``i``'s answer tokens after the prompt; a SpecError (at the answer option) when
        the answer merges with a prompt or tokenizes differently after different prompts."""
        text = self.answer.format(**{k: render_value(v) for k, v in self.classes.as_dict(i).items()})
        found: Optional[list[int]] = None
        for context in contexts:
            context_ids = self.tok(context, add_special_tokens=False)["input_ids"]
            full = self.tok(context + text, add_special_tokens=False)["input_ids"]
            if full[:len(context_ids)] != context_ids:
                raise SpecError(f"the answer {text!r} merges with the end of the prompt {context!r} into "
                                "other tokens, so it is not a continuation the model can predict", at,
                                hint='start the answer with a space, e.g. answer " {out}"')
            ids = full[len(context_ids):]
            if not ids:
                raise SpecError(f"answer {text!r} tokenizes to nothing", at)
            if found is None:
                found = ids
            elif ids != found:
                raise SpecError(f"the answer {text!r} tokenizes as {self.tok.convert_ids_to_tokens(found)} after "
                                f"{contexts[0]!r} but as {self.tok.convert_ids_to_tokens(ids)} after {context!r}: "
                                "its tokens depend on the prompt, so it cannot be scored as declared", at,
                                hint="end the prompt with a fixed token (e.g. '=') before the answer")
        assert found is not None
        return found

    def render(self, x: Input) -> tuple[str, dict[str, tuple[int, int]]]:
        """Prompt text and the character span of each slot."""
        values = self.model.evaluate({k: x[k] for k in self.model.inputs})
        text, spans = "", {}  # type: tuple[str, dict[str, tuple[int, int]]]
        for literal, field, _, _ in string.Formatter().parse(self.prompt):
            text += literal
            if field:
                start = len(text)
                text += render_value(values[field])
                spans.setdefault(field, (start, len(text)))
        return text, spans

    def encode(self, inputs: Sequence[Input]) -> dict[str, Any]:
        """Right-padded token ids, attention mask, and each slot's token index per example."""
        rendered = [self.render(x) for x in inputs]
        side = getattr(self.tok, "padding_side", "right")
        self.tok.padding_side = "right"
        try:
            enc = self.tok([text for text, _ in rendered], return_tensors="pt", padding=True,
                           return_offsets_mapping=bool(self.slots))
        finally:
            self.tok.padding_side = side
        out: dict[str, Any] = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if self.slots:
            offsets, mask = enc["offset_mapping"].tolist(), enc["attention_mask"].tolist()
            out[NAMED_POSITIONS] = {
                slot: torch.tensor([_slot_token(slot, text, spans, offsets[i], mask[i])
                                    for i, (text, spans) in enumerate(rendered)], dtype=torch.long)
                for slot in self.slots}
        return out

    def logit_positions(self, encoded: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The last real token of every prompt: where the answer's first token is predicted."""
        ids = encoded["input_ids"]
        return resolve_positions("last", encoded.get("attention_mask"), ids.shape[1], ids.shape[0])

    def class_logits(self, out: Any) -> torch.Tensor:
        """Each class's first-token logit (float32), at whatever positions ``out`` holds; with
        multi-token answers the runner already returns class scores (summed log-probabilities)."""
        out = out.logits if hasattr(out, "logits") else out
        if self.multi_token:
            return _class_scores(out, len(self.classes))
        return out[..., self.class_tokens_t.to(out.device)].float()

    def class_log_probs(self, out: Any) -> torch.Tensor:
        """Each class's answer log-probability under the full next-token distribution (the
        probability an effect size reports is the model's, not renormalised over the classes)."""
        out = out.logits if hasattr(out, "logits") else out
        if self.multi_token:  # already log-probabilities of whole answers
            return _class_scores(out, len(self.classes))
        return out.float().log_softmax(-1)[..., self.class_tokens_t.to(out.device)]

    def site_position(self, position: Any, inputs: Sequence[Input] = ()) -> Any:
        """Spec position -> runner position (``last``/``first``/int, or ``slot:NAME``).

        ``inputs`` is not needed (slot positions are found per example when encoding); it is
        accepted because the engine passes its sample inputs."""
        if position is None:
            return "last"
        if isinstance(position, str) and position not in ("last", "first"):
            if position not in self.slots:
                raise SiteError(f"position {position!r} is not a slot of the prompt {self.prompt!r} "
                                 f"(slots: {', '.join(self.slots) or 'none'})")
            return SLOT_PREFIX + position
        return position

    def position_token(self, position: Any, example: Optional[Input] = None) -> str:
        """The token text at ``position`` in a typical prompt (for report axes)."""
        if example is None:
            return str(position)
        enc = self.encode([example])
        ids = enc["input_ids"][0]
        try:
            i = int(resolve_positions(self.site_position(position), enc["attention_mask"], ids.shape[0], 1,
                                      named=enc.get(NAMED_POSITIONS))[0])
            return self.tok.convert_tokens_to_string([self.tok.convert_ids_to_tokens(int(ids[i]))])
        except (IndexError, ValueError):
            return str(position)


CONTEXTS = 16  # sampled prompts an answer's tokens are checked after


def answer_pos(net: LoadedNetwork, default: Optional[ast.Pos]) -> Optional[ast.Pos]:
    """Where the network's ``answer`` option is written (its declaration when unknown)."""
    decl = net.decl
    for opt in (decl.options if decl is not None else ()):
        if opt.key == "answer" and opt.pos != ast.NOWHERE:
            return opt.pos
    return default


def check_answers(answer_ids: Sequence[Sequence[int]], classes: Sequence[Mapping[str, Any]], tok: Any,
                  at: Optional[ast.Pos]) -> None:
    """Two classes must not tokenize alike, and no class's answer may be a proper prefix of
    another's (the longer one's summed log-probability could never be the higher: it adds the
    log-probability, at most 0, of its extra tokens). SpecErrors at the answer option."""
    for i, a in enumerate(answer_ids):
        for j, b in enumerate(answer_ids):
            if i == j:
                continue
            if list(a) == list(b):
                if i > j:
                    continue
                raise SpecError(f"answers for {dict(classes[i])} and {dict(classes[j])} tokenize alike "
                                f"{tok.convert_ids_to_tokens(list(a))}: the verbalizer cannot tell them apart", at)
            if len(a) < len(b) and list(b[:len(a)]) == list(a):
                raise SpecError(f"the answer for {dict(classes[i])} {tok.convert_ids_to_tokens(list(a))} is the start "
                                f"of the answer for {dict(classes[j])} {tok.convert_ids_to_tokens(list(b))}: the "
                                "longer answer's summed log-probability can never be the higher", at,
                                hint='end the answer with a fixed token, e.g. answer " {out} ."')


def _class_scores(out: torch.Tensor, n: int) -> torch.Tensor:
    if out.dim() != 2 or out.shape[1] != n:
        raise ValueError(f"multi-token answers are scored by the answer runner (class scores [batch, {n}]); got "
                         f"outputs of shape {tuple(out.shape)}: wrap the runner with engine.answers.answer_runner")
    return out.float()


def _slot_token(slot: str, text: str, spans: Mapping[str, tuple[int, int]], offsets: list, mask: list) -> int:
    """Index of the last real token overlapping the slot's characters."""
    start, end = spans[slot]
    hits = [i for i, (a, b) in enumerate(offsets) if mask[i] and b > a and a < end and b > start]
    if not hits:
        raise SiteError(f"slot {slot!r} of {text!r} has no token")
    return hits[-1]


def make_encoder(net: LoadedNetwork, model: CausalModel) -> Encoder:
    """The encoder a network needs: prompts for LMs, tensors for plain modules."""
    return LMEncoder(net, model) if net.is_lm else TorchEncoder(net, model)
