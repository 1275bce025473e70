"""Every class of user error is a SpecError that names file:line:col, shows the line with a
caret under the right place, and says what was wrong or expected."""
from __future__ import annotations

import pytest

from abstract.language import SpecError, compile_text, load_spec
from abstract.language.errors import SpecErrors

FILE = "t.causal"


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_text(text, FILE)
    return info.value


def errors_of(text: str) -> list[SpecError]:
    err = error_of(text)
    return list(err.errors) if isinstance(err, SpecErrors) else [err]


def check(err: SpecError, line: int, col: int, *expected: str, text: str) -> str:
    """`err` points at line:col of `text` (1-based), shows that line with a caret, and says `expected`."""
    rendered = err.render()
    head = rendered.splitlines()[0]
    assert head.startswith(f"{FILE}:{line}:{col}: error: "), rendered
    src_line = text.split("\n")[line - 1]  # lines as the parser counts them
    lines = rendered.splitlines()
    shown = f"{line:>5} | {src_line}"
    if len(src_line) > 160:  # long lines are shown as a window (ending in "...") from their start
        shown = next(x for x in lines if x.startswith(f"{line:>5} | "))
        assert shown.endswith("...") and src_line.startswith(shown[len(f"{line:>5} | "):-3]), rendered
    assert shown in lines, rendered
    caret_line = lines[lines.index(shown) + 1]
    assert caret_line.index("^") == len(f"{line:>5} | ") + col - 1, rendered
    for want in expected:
        assert want in rendered, f"{want!r} not in:\n{rendered}"
    return rendered


def model(body: str) -> str:
    """A model with inputs a, b : 0..3 around `body` (body starts on line 3)."""
    return "model M {\n  input a, b : 0..3\n" + body + "\n}\n"


NET = 'network n = torch "x.py:f"\n'


# ----------------------------------------------------------------- syntax
def test_unexpected_token_says_what_was_expected():
    t = model("  output y = a + * b")
    check(error_of(t), 3, 18, "unexpected '*'", "expected", "a name", "an integer", text=t)


def test_unexpected_token_in_a_hypothesis():
    t = model("  output y = a") + NET + "hypothesis h : M ~ n {\n  align y tu layer 1\n}\n"
    check(error_of(t), 7, 11, "unexpected name 'tu'", "expected", "'to'", text=t)


def test_unexpected_character():
    t = model("  output y = a $ b")
    check(error_of(t), 3, 16, "unexpected character '$'", "expected", text=t)


def test_single_quotes_get_a_hint():
    t = model("  output y = a") + "network n = hf 'gpt2'\n"
    check(error_of(t), 5, 16, "unexpected character \"'\"", "strings use double quotes", text=t)


def test_unexpected_end_of_file_missing_brace():
    t = "model M {\n  input a : 0..3\n  output y = a\n"
    check(error_of(t), 3, 15, "unexpected end of file", "'}'", "is a '}' missing?", text=t)


def test_comparisons_do_not_chain():
    t = model("  output y = a == b == true")
    check(error_of(t), 3, 21, "unexpected '=='", text=t)


# ----------------------------------------------------------------- names
def test_unknown_name_with_did_you_mean():
    t = model("  left = a == b\n  output y = lefft or b == 1")
    check(error_of(t), 4, 14, "unknown name 'lefft'", "did you mean 'left'?", text=t)


def test_unknown_domain():
    t = "model M {\n  domain Shape = 0..3\n  input a : Shap\n  output y = a\n}\n"
    check(error_of(t), 3, 13, "unknown domain 'Shap'", "did you mean 'Shape'?", text=t)


def test_unknown_function_or_table():
    t = model("  table Tab : 0..3 -> bool { 0: true, _: false }\n  output y = Tabb(a)")
    check(error_of(t), 4, 14, "unknown function or table 'Tabb'", "did you mean 'Tab'?", text=t)


def test_wrong_arity_of_builtin():
    t = model("  output y = abs(a, b)")
    check(error_of(t), 3, 14, "abs() takes 1 argument(s), got 2", text=t)


def test_wrong_arity_of_table():
    t = model("  table T : 0..3 -> 0..3 { 0: 1, _: 0 }\n  output y = T(a, b)")
    check(error_of(t), 4, 14, "table 'T' takes 1 argument(s), got 2", text=t)


def test_min_needs_two_arguments():
    t = model("  output y = min(a)")
    check(error_of(t), 3, 14, "min() takes at least 2 argument(s), got 1", text=t)


# ----------------------------------------------------------------- types
def test_int_plus_bool():
    t = model("  output y = a + (a == b)")
    check(error_of(t), 3, 19, "'+' needs ints, but this is bool", text=t)


def test_compare_enum_with_int():
    t = "model M {\n  input c : {red, green}\n  output y = c == 1\n}\n"
    check(error_of(t), 3, 14, "cannot compare {red, green} with int", text=t)


def test_order_comparison_on_enum():
    t = "model M {\n  input c : {red, green}\n  output y = c < green\n}\n"
    check(error_of(t), 3, 14, "'<' needs ints", text=t)


def test_if_branches_differ():
    t = model("  output y = if a == b then 1 else true")
    check(error_of(t), 3, 14, "branches of if-then-else differ in type: int and bool", text=t)


def test_non_bool_condition():
    t = model("  output y = if a then 1 else 2")
    check(error_of(t), 3, 17, "condition of if-then-else must be a bool, got int", text=t)


def test_not_needs_bool():
    t = model("  output y = not a")
    check(error_of(t), 3, 18, "'not' needs a bool, got int", text=t)


def test_table_key_of_wrong_type():
    t = model("  table T : bool -> 0..3 { true: 1, false: 0 }\n  output y = T(a)")
    check(error_of(t), 4, 16, "table 'T' expects a key of type bool, got int", text=t)


def test_non_bool_assert():
    t = model("  output y = a\n  assert y + 1")
    check(error_of(t), 4, 10, "an assert must be a boolean condition", "int", text=t)


def test_declared_domain_disagrees_with_mechanism():
    t = model("  output y : bool = a + b")
    check(error_of(t), 3, 21, "'y' is declared bool but its mechanism is of type int", text=t)


def test_declared_enum_disagrees_with_mechanism():
    t = "model M {\n  domain C = {red, green}\n  input a : 0..3\n  output y : C = a\n}\n"
    check(error_of(t), 4, 18, "'y' is declared C = {red, green} but its mechanism is of type int", text=t)


# ----------------------------------------------------------------- declarations
def test_duplicate_variable_points_at_both():
    t = model("  x = a\n  x = b\n  output y = x")
    rendered = check(error_of(t), 4, 3, "variable 'x' is defined twice", text=t)
    assert "t.causal:3:3: note: first defined here" in rendered


def test_input_declared_twice():
    t = model("  input b : 0..1\n  output y = a")
    check(error_of(t), 3, 9, "variable 'b' is defined twice", text=t)


def test_duplicate_model():
    t = "model M {\n  input a : 0..1\n  output y = a\n}\nmodel M {\n  input a : 0..1\n  output y = a\n}\n"
    rendered = check(error_of(t), 5, 7, "model 'M' is defined twice", text=t)
    assert "t.causal:1:7: note: first defined here" in rendered


def test_cycle_shows_the_path():
    t = model("  x = z + a\n  z = w + 1\n  w = x * 2\n  output y = z")
    rendered = check(error_of(t), 3, 3, "the mechanisms form a cycle: x -> w -> z -> x", text=t)  # arrows: "feeds"
    assert "acyclic" in rendered


def test_self_loop():
    t = model("  x = x + 1\n  output y = x")
    check(error_of(t), 3, 3, "cycle: x -> x", text=t)


def test_empty_domain():
    t = "model M {\n  input a : 5..2\n  output y = a\n}\n"
    check(error_of(t), 2, 13, "the domain 5..2 is empty", "low <= high", text=t)


def test_huge_domain():
    t = "model M {\n  input a : 0..10000000000\n  output y = a\n}\n"
    check(error_of(t), 2, 13, "10,000,000,001 values", "at most 1,000,000", text=t)


def test_huge_inferred_domain():
    t = "model M {\n  input a, b : 0..999999\n  output y = a * b + 1\n}\n"
    check(error_of(t), 3, 14, "this mechanism can take", "at most 1,000,000", "declare a smaller domain", text=t)


def test_enum_member_in_two_enums():
    t = "model M {\n  input c : {red, green}\n  input d : {green, blue}\n  output y = c == red\n}\n"
    check(error_of(t), 3, 13, "enum member 'green' belongs to two different enums", text=t)


def test_enum_member_listed_twice():
    t = "model M {\n  input c : {red, red}\n  output y = c\n}\n"
    check(error_of(t), 2, 13, "enum member 'red' is listed twice", text=t)


def test_variable_named_like_an_enum_member():
    t = "model M {\n  input c : {red, green}\n  red = c == green\n  output y = red\n}\n"
    check(error_of(t), 3, 3, "'red' is both a variable and a member of enum", text=t)


def test_builtin_name_as_variable():
    t = "model M {\n  input max : 0..3\n  output y = 1\n}\n"
    check(error_of(t), 2, 9, "'max' is a built-in name", text=t)


def test_table_key_outside_domain():
    t = model("  table T : 0..3 -> 0..3 { 7: 1 }\n  output y = T(a)")
    errs = errors_of(t)
    assert len(errs) == 1, "a broken table is not reported again where it is used"
    check(errs[0], 3, 28, "table 'T': key 7 is not in the key domain 0..3", text=t)


def test_table_value_outside_domain():
    t = model("  table T : 0..3 -> bool { 1: 2 }\n  output y = T(a)")
    errs = errors_of(t)
    assert len(errs) == 1
    check(errs[0], 3, 28, "table 'T': value 2 is not in the value domain bool", text=t)  # at the entry


def test_table_default_outside_domain():
    t = model("  table T : 0..3 -> 0..1 { 1: 0, _: 5 }\n  output y = T(a)")
    check(error_of(t), 3, 34, "default 5 is not in the value domain 0..1", text=t)


def test_duplicate_table_key():
    t = model("  table T : 0..3, 0..3 -> 0..3 {\n    (1, 2): 2,\n    (1, 2): 3 }\n  output y = T(a, b)")
    rendered = check(error_of(t), 5, 5, "table 'T' lists the key (1, 2) twice", text=t)
    assert "t.causal:4:5: note: first listed here" in rendered


def test_table_entry_with_wrong_key_count():
    t = model("  table T : 0..3, 0..3 -> 0..3 { 1: 2 }\n  output y = T(a, b)")
    check(error_of(t), 3, 34, "table 'T' takes 2 key(s), an entry has 1", text=t)


def test_model_without_output():
    t = model("  x = a")
    check(error_of(t), 1, 7, "model 'M' has no output", "output name = expression", text=t)


# ----------------------------------------------------------------- claims
def test_assert_before_any_model():
    t = "assert a == 1\nmodel M {\n  input a : 0..3\n  output y = a\n}\n"
    check(error_of(t), 1, 1, "this assert comes before any model", "assert ModelName:", text=t)


def test_unknown_model_in_assert():
    t = model("  output y = a") + "assert N: y == a\n"
    check(error_of(t), 5, 8, "unknown model 'N'", text=t)  # at the name


def test_assert_in_a_model_naming_another():
    t = model("  output y = a\n  assert N: y == a")
    check(error_of(t), 4, 3, "an assert inside model 'M' cannot name model 'N'", text=t)


def test_unknown_model_in_equivalent():
    t = model("  output y = a") + "equivalent M, MM\n"
    check(error_of(t), 5, 15, "unknown model 'MM'", "did you mean 'M'?", text=t)


def test_unknown_model_in_hypothesis():
    t = model("  output y = a") + NET + "hypothesis h : Mx ~ n {\n  align y to layer 1\n}\n"
    check(error_of(t), 6, 16, "unknown model 'Mx'", "did you mean 'M'?", text=t)


def test_unknown_network_in_hypothesis():
    t = model("  x = a\n  output y = x") + NET + "hypothesis h : M ~ nn {\n  align x to layer 1\n}\n"
    check(error_of(t), 7, 20, "unknown network 'nn'", "did you mean 'n'?", text=t)


def test_unknown_variable_in_align():
    t = model("  left = a == b\n  output y = left") + NET + "hypothesis h : M ~ n {\n  align lft to layer 1\n}\n"
    check(error_of(t), 8, 3, "unknown variable of model M 'lft'", "did you mean 'left'?", text=t)


def test_unknown_metric():
    t = model("  x = a\n  output y = x") + NET + "hypothesis h : M ~ n {\n  align x to layer 1\n" \
        "  expect iaa(x) >= 0.9\n}\n"
    check(error_of(t), 9, 10, "unknown metric 'iaa'", "did you mean 'iia'?", text=t)


def test_metric_arity_and_unaligned_variable():
    t = model("  x = a\n  output y = x") + NET + \
        "hypothesis h : M ~ n {\n  align x to layer 1\n  expect isolate(x) >= 0.5, iia(y) >= 0.5\n}\n"
    errs = errors_of(t)
    check(errs[0], 9, 10, "isolate(...) takes 2 variables, got 1", text=t)
    check(errs[1], 9, 29, "'y' in `iia(y) >= 0.5` is not aligned", "aligned variables: x", text=t)


def test_joint_needs_two_distinct_variables():
    t = model("  x = a\n  z = b\n  output y = x + z") + NET + \
        "hypothesis h : M ~ n {\n  align x to layer 1\n  align z to layer 1\n" \
        "  expect joint(x) >= 0.5, joint(x, x) >= 0.5\n}\n"
    errs = errors_of(t)
    check(errs[0], 11, 10, "joint(...) takes at least 2 variables, got 1", text=t)
    check(errs[1], 11, 27, "`joint(x, x) >= 0.5` names a variable twice", text=t)


def test_unknown_control():
    t = model("  x = a\n  output y = x") + NET + "hypothesis h : M ~ n {\n  align x to layer 1\n" \
        "  control random_netwrk\n}\n"
    rendered = error_of(t).render()
    assert "unknown control 'random_netwrk'" in rendered and "did you mean 'random_network'?" in rendered
    assert rendered.startswith(f"{FILE}:9:11:")  # the control's own name


def test_threshold_outside_unit_interval():
    t = model("  x = a\n  output y = x") + NET + "hypothesis h : M ~ n {\n  align x to layer 1\n" \
        "  expect iia(x) >= 1.5\n}\n"
    check(error_of(t), 9, 10, "threshold 1.5 is not between 0 and 1", text=t)


def test_hypothesis_without_align():
    t = model("  x = a\n  output y = x") + NET + "hypothesis h : M ~ n {\n  expect iia(x) >= 0.5\n}\n"
    errs = errors_of(t)
    check(errs[0], 7, 12, "hypothesis 'h' aligns no variable", text=t)


def test_unknown_network_kind():
    t = model("  output y = a") + 'network n = jax "x.py:f"\n'
    check(error_of(t), 5, 9, "unknown network kind 'jax'", 'torch "file.py:function"', text=t)


def test_duplicate_network_and_hypothesis():
    t = (model("  x = a\n  output y = x") + NET + NET
         + "hypothesis h : M ~ n {\n  align x to layer 1\n}\nhypothesis h : M ~ n {\n  align x to layer 1\n}\n")
    errs = errors_of(t)
    assert [e.message for e in errs] == ["network 'n' is defined twice", "hypothesis 'h' is defined twice"]
    check(errs[0], 7, 9, text=t)
    check(errs[1], 11, 12, text=t)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.causal")
    assert "no such spec file" in info.value.render() and "nope.causal" in info.value.render()


def test_load_spec_reports_the_path(tmp_path):
    p = tmp_path / "bad.causal"
    p.write_text("model M {\n  input a : 0..3\n  output y = b\n}\n")
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert info.value.render().startswith(f"{p}:3:14: error: unknown name 'b'")


# ----------------------------------------------------------------- several errors at once
def test_independent_errors_are_reported_together():
    t = ("model M {\n  input a, b : 0..3\n  x = a + true\n  z = bb\n  output y = a\n}\n"
         "model K {\n  input c : 0..1\n  output y = if c then 1 else 2\n}\n"
         "equivalent M, Q\n")
    err = error_of(t)
    assert isinstance(err, SpecErrors)
    errs = err.errors
    assert len(errs) == 4
    check(errs[0], 3, 11, "'+' needs ints", text=t)
    check(errs[1], 4, 7, "unknown name 'bb'", "did you mean 'b'?", text=t)
    check(errs[2], 9, 17, "condition of if-then-else must be a bool", text=t)
    check(errs[3], 11, 15, "unknown model 'Q'", text=t)
    rendered = err.render()
    assert rendered.count(": error: ") == 4
    assert str(err) == rendered


def test_an_error_does_not_cascade_to_its_users():
    """A variable whose mechanism failed is not reported again as an unknown name."""
    t = model("  x = a + true\n  output y = x + 1")
    errs = errors_of(t)
    assert len(errs) == 1 and "'+' needs ints" in errs[0].message


def test_equivalent_models_must_share_an_interface():
    t = model("  output y = a") + "model N {\n  input a : 0..4\n  output y = a\n}\nequivalent M, N\n"
    check(error_of(t), 9, 1, "`equivalent M, N` compares models with different interfaces",
          "M has inputs a: 0..3, b: 0..3; N has a: 0..4", text=t)


def test_errors_come_in_reading_order_and_a_bad_align_is_not_offered_as_aligned():
    t = model("  x = a\n  output y = x") + NET + \
        "hypothesis h : M ~ n {\n  align q to layer 1\n  align x to layer 1\n" \
        "  expect iia(q) >= 0.5, iia(y) >= 0.5\n}\n" + \
        "assert Z: y == 1\n"
    errs = errors_of(t)
    assert [e.pos.line for e in errs] == sorted(e.pos.line for e in errs)
    unaligned = next(e for e in errs if "'y' in" in e.message)
    assert unaligned.hint == "aligned variables: x"
    assert not any("'q' in" in e.message for e in errs)  # reported once, at its align line


# ----------------------------------------------------------------- keywords, literals, limits
@pytest.mark.parametrize("body, col, hint", [
    ("  output if = a", 10, "'if' is a keyword and cannot be used as a name"),
    ("  data = a\n  output y = a", 3, "'data' is a keyword and cannot be used as a name"),
    ("  input model : 0..3\n  output y = a", 9, "'model' is a keyword"),
])
def test_keywords_are_reserved(body, col, hint):
    t = model(body)
    check(error_of(t), 3, col, "unexpected", hint, text=t)


@pytest.mark.parametrize("body, col, hint", [
    ("  output y = 1 + if a == 0 then 1 else 0", 18, "needs parentheses: (if c then x else y)"),
    ("  output y = a == 1 == true", 21, "comparisons do not chain"),
    ("  output y = (a == 1) == not (b == 1)", 26, "`not` binds more loosely than comparisons"),
    ("  output y = a = 1", 16, "use '==' to compare"),
])
def test_common_expression_mistakes_get_a_hint(body, col, hint):
    t = model(body)
    check(error_of(t), 3, col, "unexpected", hint, text=t)


def test_huge_integer_literal():
    t = model("  output y : 0..3 = a + " + "9" * 40)
    check(error_of(t), 3, 25, "integer literal with 40 digits is too large", text=t)


def test_unknown_escape_in_a_string():
    t = model("  output y = a") + 'network n = torch "dir\\q.py:f"\n'
    check(error_of(t), 5, 23, "unknown escape '\\q' in a string", "write \\\\ for a backslash", text=t)


def test_known_escapes_are_decoded():
    from abstract.language import parse_text
    t = model("  output y = a") + 'network n = torch "a\\\\b \\"q\\".py:f"\n'
    assert parse_text(t).networks[0].source == 'a\\b "q".py:f'


def test_expression_nested_too_deeply():
    t = model("  output y = " + " + ".join(["a"] * 400))
    check(error_of(t), 3, 14, "expression nested more than 300 levels deep", "intermediate variables", text=t)


def test_byte_order_mark_is_not_content(tmp_path):
    p = tmp_path / "bom.causal"
    p.write_bytes("\ufeff".encode("utf-8") + model("  output y = a").encode("utf-8"))
    assert list(load_spec(p).models) == ["M"]


def test_problems_found_while_reading_come_with_the_compile_errors():
    """A duplicate table key (found while reading) no longer hides an unknown name in another
    model, nor does a bad string escape hide a type error."""
    t = ("model M {\n  input a : 0..3\n  table T : 0..3 -> 0..3 { 1: 1, 1: 2 }\n  output y = T(a)\n}\n"
         "model N {\n  input b : 0..3\n  output z = zz + b\n}\n"
         'network n = torch "x\\q.py:f"\n'
         "assert M: y + true\n")
    errs = errors_of(t)
    messages = [e.message for e in errs]
    assert any("lists the key 1 twice" in m for m in messages)
    assert any("unknown name 'zz'" in m for m in messages)
    assert any("unknown escape" in m for m in messages)
    assert [e.pos.line for e in errs] == sorted(e.pos.line for e in errs)
    from abstract.language import parse_text
    with pytest.raises(SpecError):  # parse_text alone is still strict
        parse_text(t, FILE)
