"""Multi-token answers: whole-sequence, teacher-forced class scores, checked against a
hand-written scoring of the same GPT-2 (and with an interchange at a prompt site), the
single-token path left untouched, and answers that cannot be scored located at `answer`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from abstract.engine.answers import AnswerCache, AnswerRunner, answer_runner
from abstract.engine.encoders import make_encoder
from abstract.engine.networks import LoadedNetwork
from abstract.language import SpecError, compile_text
from abstract.neural.cache import stack_caches
from abstract.neural.runner import make_runner
from abstract.neural.sites import Site

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "fixtures"))
from split_lm import build  # noqa: E402

MODEL = """
model Copy {
    domain Color = {red, dark_red, blue, light_blue}
    input a, b : Color
    output y : Color = a
}
"""
BASES = [{"a": "dark_red", "b": "blue"}, {"a": "red", "b": "light_blue"}, {"a": "blue", "b": "red"}]
SOURCES = [{"a": "blue", "b": "red"}, {"a": "light_blue", "b": "dark_red"}, {"a": "dark_red", "b": "dark_red"}]
ANSWERS = {"red": "red", "dark_red": "dark_red", "blue": "blue", "light_blue": "light_blue"}


def setup(answer: str = " {y}", model_text: str = MODEL):
    module, tok = build()
    model = next(iter(compile_text(model_text, "copy.causal").models.values()))
    net = LoadedNetwork("lm", "lm", module, {"prompt": "{a} {b} =", "answer": answer}, tokenizer=tok)
    enc = make_encoder(net, model)
    return enc, answer_runner(make_runner(module), enc), module, tok


def prompt(x) -> str:
    return f"{x['a'].replace('_', ' _ ')} {x['b'].replace('_', ' _ ')} ="


@torch.no_grad()
def hand_scores(module, tok, x, answer_of, patch=None):
    """Summed log-probabilities of each class's answer after the prompt, one forward per
    (prompt, class); ``patch`` = (layer, new vector): block ``layer``'s input at the last
    prompt token replaced by it (what resid_pre@last interchange does)."""
    p_ids = tok(prompt(x), add_special_tokens=False)["input_ids"]
    out = []
    for value in ["red", "dark_red", "blue", "light_blue"]:
        full = tok(prompt(x) + answer_of(value), add_special_tokens=False)["input_ids"]
        assert full[:len(p_ids)] == p_ids
        handle = None
        if patch is not None:
            layer, vec = patch

            at = len(p_ids) - 1

            def pre(m, args, kwargs, at=at, vec=vec):
                h = (kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]).clone()
                h[0, at] = vec
                if "hidden_states" in kwargs:
                    return args, {**kwargs, "hidden_states": h}
                return (h, *args[1:]), kwargs
            handle = module.transformer.h[layer].register_forward_pre_hook(pre, with_kwargs=True)
        try:
            logp = module(torch.tensor([full])).logits[0].float().log_softmax(-1)
        finally:
            if handle is not None:
                handle.remove()
        ans = full[len(p_ids):]
        out.append(sum(float(logp[len(p_ids) - 1 + j, t]) for j, t in enumerate(ans)))
    return torch.tensor(out)


@torch.no_grad()
def block_input(module, tok, x, layer):
    ids = tok(prompt(x), add_special_tokens=False)["input_ids"]
    got = {}

    def pre(m, args, kwargs):
        got["h"] = (kwargs["hidden_states"] if "hidden_states" in kwargs else args[0])[0, -1].clone()
    h = module.transformer.h[layer].register_forward_pre_hook(pre, with_kwargs=True)
    try:
        module(torch.tensor([ids]))
    finally:
        h.remove()
    return got["h"]


def test_answers_spanning_several_tokens_are_declared_multi_token():
    enc, runner, _, tok = setup()
    assert enc.multi_token and isinstance(runner, AnswerRunner)
    spelled = [tok.convert_ids_to_tokens(ids) for ids in enc.answer_ids]
    assert spelled == [["red"], ["dark", "_", "red"], ["blue"], ["light", "_", "blue"]]


def test_unmodified_scores_equal_hand_written_teacher_forcing():
    enc, runner, module, tok = setup()
    scores = enc.class_logits(runner.logits(enc.encode(BASES)))
    for i, x in enumerate(BASES):
        want = hand_scores(module, tok, x, lambda v: " " + v.replace("_", " _ "))
        assert torch.allclose(scores[i], want, atol=1e-4), (scores[i], want)
    # not the first token: dark_red's score is the sum of three log-probabilities (all < 0)
    first_only = module(**{k: v for k, v in enc.encode(BASES[:1]).items() if k != "__named_positions__"}
                        ).logits[0].log_softmax(-1)
    assert scores[0, 1] < 0 and not torch.isclose(scores[0, 1], first_only[-1, enc.answer_ids[1][0]])


@pytest.mark.parametrize("path", ["cached", "hook"])
def test_interchange_at_a_prompt_site_equals_hand_patched_scoring(path):
    enc, runner, module, tok = setup()
    site = Site(layer=1, component="resid_pre", position="last")
    base_x, source_x = enc.encode(BASES), enc.encode(SOURCES)
    src = runner.collect(source_x, site)
    for i, s in enumerate(SOURCES):  # the source activation is the source prompt's own, answers unseen
        assert torch.allclose(src[i], block_input(module, tok, s, 1), atol=1e-5)
    if path == "cached":
        cache = runner.prepare(base_x, site)
        assert isinstance(cache, AnswerCache) and cache.batch_size == len(BASES)
        got = runner.run_from_site(cache, lambda b: src)
    else:
        got = runner.run_with_hook(base_x, site, src)
    for i, x in enumerate(BASES):
        want = hand_scores(module, tok, x, lambda v: " " + v.replace("_", " _ "), patch=(1, src[i]))
        assert torch.allclose(got[i], want, atol=1e-4), (i, got[i], want)


def test_cache_rows_select_and_stack_by_pair():
    enc, runner, _, _ = setup()
    base_x, source_x = enc.encode(BASES), enc.encode(SOURCES)
    sites = [Site(layer=0, component="resid_post", position=p) for p in ("last", "slot:a")]
    caches = runner.prepare_many(base_x, sites)
    srcs = runner.collect_many(source_x, sites)
    whole = {s: runner.run_from_site(caches[s], srcs[s]) for s in sites}
    idx = torch.tensor([2, 0])
    part = runner.run_from_site(caches[sites[0]].select(idx), srcs[sites[0]][idx])
    assert torch.allclose(part, whole[sites[0]][idx], atol=1e-5)
    stacked = stack_caches([caches[s] for s in sites])
    both = runner.run_from_site(stacked, torch.cat([srcs[s] for s in sites]))
    assert torch.allclose(both, torch.cat([whole[s] for s in sites]), atol=1e-5)


def test_single_token_answers_keep_the_first_token_path_bit_for_bit():
    single = MODEL.replace("{red, dark_red, blue, light_blue}", "{red, blue}")
    enc, runner, module, tok = setup(model_text=single)
    plain = make_runner(module)
    assert not enc.multi_token and type(runner) is type(plain)
    x = enc.encode([{"a": "red", "b": "blue"}, {"a": "blue", "b": "blue"}])
    lp = enc.logit_positions(x)
    out = plain.logits(x, logit_positions=lp)
    ids = [tok.convert_tokens_to_ids(w) for w in ("red", "blue")]
    assert torch.equal(enc.class_logits(out), out[:, ids].float())


def _spec_error(answer: str, domain: str):
    text = MODEL.replace("{red, dark_red, blue, light_blue}", domain) + \
        f'network lm = torch "fixtures/split_lm.py:build" {{\n    prompt "{{a}} {{b}} =",\n    answer "{answer}"\n}}\n'
    spec = compile_text(text, str(HERE / "answers.causal"))
    module, tok = build()
    net = LoadedNetwork("lm", "lm", module, {"prompt": "{a} {b} =", "answer": answer}, tokenizer=tok,
                        decl=spec.networks["lm"])
    with pytest.raises(SpecError) as info:
        make_encoder(net, spec.models["Copy"])
    line = text.splitlines().index(f'    answer "{answer}"') + 1
    assert info.value.pos is not None and (info.value.pos.line, info.value.pos.column) == (line, 5)
    return str(info.value)


def test_two_classes_tokenizing_alike_are_a_spec_error_at_the_answer():
    assert "tokenize alike" in _spec_error(" {y}", "{red, pink, cyan}")  # both unknown: [UNK]


def test_an_answer_that_starts_another_is_a_spec_error_at_the_answer():
    assert "is the start of the answer" in _spec_error(" {y}", "{dark, dark_red}")

