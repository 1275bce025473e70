"""Text -> syntax tree. Lark (LALR) does the parsing; this module turns Lark's tree into
`ast` dataclasses with positions and Lark's exceptions into `SpecError`s a person can read."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast
from .errors import SpecError, source_lines

# The grammar ships inside the package (``abstract/grammar`` is a link to the repository's top-level
# ``grammar/`` folder, copied into wheels), and is read the way lark reads packaged grammars, so an
# installed wheel parses specs without the repository.
GRAMMAR_PACKAGE, GRAMMAR_FOLDER, GRAMMAR_FILE = "abstract", "grammar", "causal.lark"

# How terminals are named in "expected ..." messages.
_FRIENDLY = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": 'a string "..."',
    "COMP_OP": "a comparison (==, !=, <, <=, >, >=)", "ADD_OP": "'+'", "MINUS": "'-'", "MUL_OP": "'//' or '%'",
    "STAR": "'*'",
    "$END": "end of file",
}


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark.open_from_package(GRAMMAR_PACKAGE, GRAMMAR_FILE, (GRAMMAR_FOLDER,), parser="lalr", lexer="basic",
                                  propagate_positions=True, maybe_placeholders=True)


def parse_text(text: str, path: str = "<string>", strict: bool = True) -> ast.SpecFile:
    """Parse spec text into a `SpecFile`. Raises `SpecError` on a syntax error.

    Problems found while building the tree that do not stop it (a table key listed twice, an
    unknown string escape, an assert in the wrong place ...) are collected: raised together
    when ``strict``, else left in ``SpecFile.problems`` for the compiler to report beside its
    own errors, so that independent mistakes all show up in one run."""
    try:
        tree = _parse_bounded(text, path)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, path) from None
    builder = _ToAst(path, text)
    try:
        items = builder.transform(tree)
    except VisitError as err:  # an error raised inside a transformer callback
        if isinstance(err.orig_exc, SpecError):
            raise err.orig_exc.with_source(text) from None
        raise
    spec = _collect(items, path, text, builder.problems)
    if strict and spec.problems:
        raise_all(list(spec.problems), text)
    return spec


def raise_all(errors: list[SpecError], text: str) -> None:
    """Raise ``errors`` (with their source excerpts) in reading order: one, or all together."""
    from .errors import SpecErrors
    for e in errors:
        e.with_source(text)
    errors.sort(key=lambda e: (e.pos.line, e.pos.column) if e.pos else (0, 0))
    raise errors[0] if len(errors) == 1 else SpecErrors(errors)


MAX_DEPTH = 300  # syntax-tree levels of one expression: a 300-term sum or 300 nested ifs
MAX_OPEN = 6 * MAX_DEPTH  # parser stack entries: an open if-then-else keeps 5, so this passes MAX_DEPTH first


def _parse_bounded(text: str, path: str) -> Tree:
    """Parse, measuring the height of every subtree as the parser builds it (LALR reduces
    bottom-up), and stop at the first one deeper than MAX_DEPTH: a generated spec with a
    100,000-level expression is refused when its 300th level is built, before the rest is
    parsed and before any recursive pass (tree -> ast, types, z3, evaluation) could overflow."""
    ip = _parser().parse_interactive(text)
    heights: dict[int, tuple[Tree, int]] = {}  # id -> (tree kept alive, height)
    for tok in ip.iter_parse():
        stack = ip.parser_state.value_stack
        if len(stack) > MAX_OPEN:  # open parentheses, nots, signs or ifs not yet closed: right-nested
            raise SpecError(f"expression nested more than {MAX_DEPTH} levels deep", _tok_pos(path, tok),
                            source=text, hint="split it into intermediate variables")
        if len(stack) >= 2:
            _check_height(stack[-2], heights, path, text)
    tree = ip.resume_parse()
    _check_height(tree, heights, path, text)
    return tree


def _check_height(top, heights: dict, path: str, text: str) -> None:
    """Height of `top` from its children's (memoised), iteratively; SpecError past MAX_DEPTH.
    Lark's list accumulators (``__..._star`` rules, a new node per item over one growing list)
    are skipped: measuring each would be quadratic in a long model; their items are measured
    when the enclosing statement is."""
    if not isinstance(top, Tree) or id(top) in heights or str(top.data).startswith("__"):
        return
    todo = [(top, False)]
    while todo:
        node, ready = todo.pop()
        if id(node) in heights:
            continue
        kids = [c for c in node.children if isinstance(c, Tree)]
        if not ready:
            todo.append((node, True))
            todo.extend((c, False) for c in kids if id(c) not in heights)
            continue
        h = 1 + max((heights[id(c)][1] for c in kids), default=0)
        heights[id(node)] = (node, h)
        if h > MAX_DEPTH:
            meta = node.meta
            raise SpecError(f"expression nested more than {MAX_DEPTH} levels deep",
                            ast.Pos(path, getattr(meta, "line", 1), getattr(meta, "column", 1)),
                            source=text, hint="split it into intermediate variables")


def parse_file(path: str | Path, strict: bool = True) -> ast.SpecFile:
    """Read and parse a spec file; unreadable files are a `SpecError` too, and bytes that are
    not UTF-8 are one located at their line and column."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"no such spec file: {path}") from None
    except OSError as err:
        raise SpecError(f"cannot read spec file {path}: {err.strerror or err}") from None
    return parse_text(decode_source(data, str(path)), str(path), strict)


def decode_source(data: bytes, path: str) -> str:
    """UTF-8 text of a spec (a byte-order mark some editors write is not content)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        column = len(data[line_start:err.start].decode("utf-8", errors="replace")) + 1
        shown = data.decode("utf-8", errors="replace")
        raise SpecError(f"the file is not valid UTF-8: byte 0x{data[err.start]:02x} cannot start or continue a "
                        "character here", ast.Pos(path, line, column, line, column + 1), source=shown,
                        hint="save the file as UTF-8") from None


def _collect(items: list, path: str, text: str, problems: list) -> ast.SpecFile:
    kinds: dict[type, list] = {ast.ModelDecl: [], ast.Assert: [], ast.Equivalent: [], ast.NetworkDecl: [],
                               ast.HypothesisDecl: []}
    last_model: str | None = None
    for item in items:
        if isinstance(item, ast.ModelDecl):
            last_model = item.name
        if isinstance(item, ast.Assert) and item.model is None:
            if last_model is None:
                problems.append(SpecError("this assert comes before any model, so it is not clear which model it is "
                                          "about", item.pos, hint="write `assert ModelName: ...` or move it after "
                                          "the model"))
                continue
            item = dataclasses.replace(item, model=last_model)
        kinds[type(item)].append(item)
    return ast.SpecFile(path=path, text=text, models=tuple(kinds[ast.ModelDecl]), asserts=tuple(kinds[ast.Assert]),
                        equivalences=tuple(kinds[ast.Equivalent]), networks=tuple(kinds[ast.NetworkDecl]),
                        hypotheses=tuple(kinds[ast.HypothesisDecl]), problems=tuple(problems))


# ----------------------------------------------------------------- syntax errors
def _describe_terminal(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        term = _parser().get_terminal(name)
    except KeyError:
        return name.lower()
    pattern = term.pattern
    if pattern.type == "str":
        return f"'{pattern.value}'"
    return name.lower()


_EXPR_WORDS = ("'and'", "'or'", "'then'", "'else'", "'not'", "'if'")


def _expected_list(names) -> str:
    """What could have come instead, most telling first: operators and expression words
    before the keywords that start a new statement; at most 12."""
    described = {_describe_terminal(n) for n in names}

    def rank(d: str) -> tuple:
        word = d.strip("'").isalpha()
        return (d in ("a name", "an integer", "a number") and 1 or 0, word and d not in _EXPR_WORDS, d)

    ordered = sorted(described, key=rank)
    if len(ordered) > 12:
        ordered = ordered[:12] + ["..."]
    return ", ".join(ordered)


def _is_keyword(tok: Token) -> bool:
    return tok.type != "NAME" and str(tok).isidentifier()


def _hint(tok: Token, expected: set) -> str | None:
    """The likely mistake behind an unexpected token, where one is common enough to name."""
    value = str(tok)
    operand = {"INT", "NAME"} <= expected  # an expression operand was due
    if value == "if" and operand:
        return "an if-expression inside a larger expression needs parentheses: (if c then x else y)"
    if value == "not" and operand:
        return "`not` binds more loosely than comparisons: put it in parentheses, e.g. a == (not b)"
    if _is_keyword(tok) and "NAME" in expected:
        return f"'{value}' is a keyword and cannot be used as a name"
    if tok.type == "COMP_OP" and "COMP_OP" not in expected:
        return "comparisons do not chain: write (a == b) == c, or a == b and b == c"
    if value == "=" and "EQUAL" not in expected:
        return "use '==' to compare; '=' only defines a variable"
    return None


def _syntax_error(err: UnexpectedInput, text: str, path: str) -> SpecError:
    line, column = max(err.line, 1), max(err.column, 1)
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        lines = list(source_lines(text))  # lines as the parser counts them ('\n' only)
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        line, column = len(lines), len(lines[-1]) + 1
        pos = ast.Pos(path, line, column)
        expected = _expected_list(err.expected)
        hint = "is a '}' missing?" if "'}'" in expected else None
        return SpecError(f"unexpected end of file; expected {expected}", pos, source=text, hint=hint)
    if isinstance(err, UnexpectedCharacters):
        at: int | None = err.pos_in_stream  # lark declares it `= None` on the base class; here an int
        ch = text[at] if at is not None and at < len(text) else "?"
        pos = ast.Pos(path, line, column)
        allowed = _expected_list(err.allowed) if err.allowed else None
        msg = f"unexpected character {ch!r}" + (f"; expected {allowed}" if allowed else "")
        hint = "strings use double quotes" if ch == "'" else None
        if ch == "\ufeff":
            hint = "the file starts with a byte-order mark: save it as UTF-8 without BOM"
        return SpecError(msg, pos, source=text, hint=hint)
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    width = len(str(tok)) or 1
    pos = ast.Pos(path, line, column, line, column + width)
    expected = _expected_list(err.expected)
    return SpecError(f"unexpected {_token_text(tok)}; expected {expected}", pos, source=text,
                     hint=_hint(tok, set(err.expected)))


def _token_text(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name '{tok}'"
    return f"'{tok}'"


# ----------------------------------------------------------------- tree -> ast
def _pos(path: str, meta) -> ast.Pos:
    return ast.Pos(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _line_col(tok: Token) -> tuple[int, int]:
    """Where a token starts; lark leaves it None only on tokens made by hand (0: nowhere, as NOWHERE)."""
    return tok.line or 0, tok.column or 0


def _tok_pos(path: str, tok: Token) -> ast.Pos:
    return ast.Pos(path, *_line_col(tok), tok.end_line, tok.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Builds ast nodes bottom-up. Rule names match grammar/causal.lark."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__()
        self.path, self.text = path, text
        self.problems: list[SpecError] = []  # found while building; see parse_text

    def _p(self, meta) -> ast.Pos:
        return _pos(self.path, meta)

    def _int(self, tok: Token) -> int:
        try:
            return _int(tok, self.path)
        except SpecError as err:
            self.problems.append(err)
            return 0

    def _unquote(self, tok: Token) -> str:
        try:
            return _unquote(tok, self.path)
        except SpecError as err:
            self.problems.append(err)
            return str(tok)[1:-1]

    def _src(self, meta) -> str:
        return self.text[meta.start_pos:meta.end_pos]

    # -- file
    def start(self, meta, items):
        return [i for i in items if i is not None and not isinstance(i, Token)]

    # -- domains
    def range_domain(self, meta, c):
        return ast.RangeDomain(c[0], c[1], self._p(meta))

    def enum_domain(self, meta, c):
        names = [str(t) for t in c if t is not None]
        return ast.EnumDomain(tuple(names), self._p(meta))

    def bool_domain(self, meta, c):
        return ast.BoolDomain(self._p(meta))

    def named_domain(self, meta, c):
        return ast.NamedDomain(str(c[0]), self._p(meta))

    def int_literal(self, meta, c):
        return self._int(c[0])

    def negative_int(self, meta, c):  # c: [MINUS, INT]
        return -self._int(c[-1])

    def true(self, meta, c):
        return True

    def false(self, meta, c):
        return False

    def enum_literal(self, meta, c):
        return str(c[0])

    def literal(self, meta, c):
        return c[0]

    def name_list(self, meta, c):
        return list(c)

    def domain_list(self, meta, c):
        return tuple(c)

    # -- model statements
    def domain_decl(self, meta, c):
        return ast.DomainDecl(str(c[0]), c[1], self._p(meta))

    def input_decl(self, meta, c):
        names = c[0]
        return ast.InputDecl(tuple(str(n) for n in names), c[1], self._p(meta),
                             tuple(_tok_pos(self.path, n) for n in names))

    def var_decl(self, meta, c):
        return ast.VarDecl(str(c[0]), c[1], c[2], False, _tok_pos(self.path, c[0]))

    def output_decl(self, meta, c):
        return ast.VarDecl(str(c[0]), c[1], c[2], True, _tok_pos(self.path, c[0]))

    def key_single(self, meta, c):
        return (c[0],)

    def key_tuple(self, meta, c):
        return tuple(c)

    def key_default(self, meta, c):
        return None

    def table_entry(self, meta, c):
        return (c[0], c[1], self._p(meta))

    def table_decl(self, meta, c):
        name, keys, value_domain, *entries = c
        rows, default, where, default_pos = [], None, [], ast.NOWHERE
        seen: dict[tuple[ast.Literal, ...], ast.Pos] = {}
        for entry in entries:
            if entry is None:
                continue
            key, value, pos = entry
            if key is None:
                if default is not None:
                    self.problems.append(SpecError(f"table '{name}' has two default entries '_'", pos))
                    continue
                default, default_pos = value, pos
                continue
            if key in seen:
                self.problems.append(SpecError(f"table '{name}' lists the key {_fmt_key(key)} twice", pos,
                                               notes=(("first listed here", seen[key]),)))
                continue
            seen[key] = pos
            rows.append((key, value))
            where.append(pos)
        return ast.TableDecl(str(name), keys, value_domain, tuple(rows), default, _tok_pos(self.path, name),
                             tuple(where), default_pos)

    def model(self, meta, c):
        name, *stmts = c
        groups: dict[type, list] = {ast.DomainDecl: [], ast.InputDecl: [], ast.VarDecl: [], ast.TableDecl: [],
                                    ast.Assert: []}
        for s in stmts:
            if s is None or isinstance(s, Token):
                continue
            if isinstance(s, ast.Assert) and s.model is not None and s.model != str(name):
                self.problems.append(SpecError(f"an assert inside model '{name}' cannot name model '{s.model}'",
                                               s.pos))
                continue
            if isinstance(s, ast.Assert):
                s = dataclasses.replace(s, model=str(name))
            groups[type(s)].append(s)
        return ast.ModelDecl(str(name), tuple(groups[ast.DomainDecl]), tuple(groups[ast.InputDecl]),
                             tuple(groups[ast.VarDecl]), tuple(groups[ast.TableDecl]), tuple(groups[ast.Assert]),
                             _tok_pos(self.path, name))

    # -- claims
    def assert_stmt(self, meta, c):
        model, expr = c
        text = self._src(meta)
        text = text[len("assert"):].strip()
        if model is not None:
            text = text[len(str(model)):].lstrip()[1:].strip()
        return ast.Assert(expr, str(model) if model is not None else None, text, self._p(meta),
                          _tok_pos(self.path, model) if model is not None else ast.NOWHERE)

    def equivalent_stmt(self, meta, c):
        return ast.Equivalent(str(c[0]), str(c[1]), self._p(meta), _tok_pos(self.path, c[0]), _tok_pos(self.path, c[1]))

    # -- expressions
    def number(self, meta, c):
        return ast.Num(self._int(c[0]), self._p(meta))

    def bool_true(self, meta, c):
        return ast.BoolLit(True, self._p(meta))

    def bool_false(self, meta, c):
        return ast.BoolLit(False, self._p(meta))

    def name(self, meta, c):
        return ast.Name(str(c[0]), self._p(meta))

    def negate(self, meta, c):  # c: [MINUS, operand]
        operand = c[-1]
        if isinstance(operand, ast.Num):
            return ast.Num(-operand.value, self._p(meta))
        return ast.Unary("-", operand, self._p(meta))

    def not_op(self, meta, c):
        return ast.Unary("not", c[0], self._p(meta))

    def binary(self, meta, c):
        return ast.Binary(str(c[1]), c[0], c[2], self._p(meta))

    compare = binary

    def and_op(self, meta, c):
        return ast.Binary("and", c[0], c[1], self._p(meta))

    def or_op(self, meta, c):
        return ast.Binary("or", c[0], c[1], self._p(meta))

    def if_expr(self, meta, c):
        return ast.IfThenElse(c[0], c[1], c[2], self._p(meta))

    def call(self, meta, c):
        func, *args = c
        return ast.Call(str(func), tuple(a for a in args if a is not None), self._p(meta))

    # -- values and options
    def number_value(self, meta, c):
        tok = c[0]
        return ast.SpelledFloat(str(tok)) if tok.type == "FLOAT" else self._int(tok)

    def negative_float(self, meta, c):  # c: [MINUS, FLOAT]
        return -float(c[-1])

    def range_value(self, meta, c):
        return ast.Range(c[0], c[1])

    def string_value(self, meta, c):
        return self._unquote(c[0])

    def name_value(self, meta, c):
        return str(c[0])

    def all_value(self, meta, c):
        return ast.AllValues()

    def list_value(self, meta, c):
        return [v for v in c if v is not None]

    def argument(self, meta, c):
        key, value = c
        return (str(key) if key is not None else None, value, self._p(meta))

    def call_value(self, meta, c):
        return self._call(meta, c)

    def intervention(self, meta, c):
        return self._call(meta, c)

    def _call(self, meta, c) -> ast.CallValue:
        name, *args = c
        out, where, n = [], [], 0
        for a in args:
            if a is None:
                continue
            key, value, pos = a
            if key is None:
                key, n = str(n), n + 1
            out.append((key, value))
            where.append(pos)
        return ast.CallValue(str(name), tuple(out), self._p(meta), tuple(where))

    def option(self, meta, c):
        return ast.Option(str(c[0]), c[1], self._p(meta))

    def option_block(self, meta, c):
        return tuple(o for o in c if isinstance(o, ast.Option))

    def site(self, meta, c):
        return tuple(c)

    # -- networks and hypotheses
    def network(self, meta, c):
        name, kind, source, options = c
        return ast.NetworkDecl(str(name), str(kind), self._unquote(source), options or (), _tok_pos(self.path, name))

    def align_stmt(self, meta, c):
        var, site, intervention = c
        return ("align", ast.Align(str(var), site or (), intervention, self._p(meta)))

    def search_stmt(self, meta, c):
        return ("search", tuple(c))

    def train_stmt(self, meta, c):
        return ("train", tuple(c))

    def data_stmt(self, meta, c):
        return ("data", tuple(c))

    def expectation(self, meta, c):
        metric, *rest = c
        names, op, bound = rest[:-2], rest[-2], rest[-1]
        if isinstance(bound, ast.Against):
            return ast.Expectation(str(metric), tuple(str(n) for n in names), str(op), bound.margin,
                                   self._src(meta), self._p(meta), bound)
        return ast.Expectation(str(metric), tuple(str(n) for n in names), str(op), float(bound),
                               self._src(meta), self._p(meta))

    def margin(self, meta, c):
        sign, value = c
        return (-float(value) if str(sign) == "-" else float(value), self._p(meta))

    def ref(self, meta, c):
        first, second = c
        if second is None:
            return (None, str(first), _tok_pos(self.path, first))
        return (str(first), str(second), self._p(meta))

    def baseline_ref(self, meta, c):
        name, margin = c
        value, where = margin if margin is not None else (0.0, ast.NOWHERE)
        kind = "do_nothing" if str(name) == "do_nothing" else "name"
        return ast.Against(kind, str(name), margin=value, pos=self._p(meta), margin_pos=where)

    def control_ref(self, meta, c):
        name, margin = c
        value, where = margin if margin is not None else (0.0, ast.NOWHERE)
        return ast.Against("control", str(name), margin=value, pos=self._p(meta),
                           arg_pos=(_tok_pos(self.path, name),), margin_pos=where)

    def figure_ref(self, meta, c):
        name, *refs, margin = c
        value, where = margin if margin is not None else (0.0, ast.NOWHERE)
        refs = [r for r in refs if r is not None]
        owners = tuple(h for h, _, _ in refs)
        return ast.Against("metric", str(name), tuple(v for _, v, _ in refs), next((h for h in owners if h), None),
                           value, self._p(meta), tuple(p for _, _, p in refs), where, owners)

    def expect_stmt(self, meta, c):
        return ("expect", tuple(c))

    def control_stmt(self, meta, c):
        return ("control", tuple(c))

    def hold_stmt(self, meta, c):
        return ("hold", ast.Hold(tuple(c), self._p(meta)))

    def hypothesis(self, meta, c):
        name, model, network, *stmts = c
        parts: dict[str, list] = {"align": [], "search": [], "train": [], "data": [], "expect": [], "control": [],
                                   "hold": []}
        for s in stmts:
            if s is None or isinstance(s, Token):
                continue
            kind, value = s
            if kind in ("align", "hold"):
                parts[kind].append(value)
            else:
                parts[kind].extend(value)
        controls = parts["control"]
        return ast.HypothesisDecl(str(name), str(model), str(network), tuple(parts["align"]), tuple(parts["search"]),
                                  tuple(parts["train"]), tuple(parts["data"]), tuple(parts["expect"]),
                                  tuple(str(c) for c in controls), _tok_pos(self.path, name),
                                  _tok_pos(self.path, model), _tok_pos(self.path, network),
                                  tuple(_tok_pos(self.path, c) for c in controls), holds=tuple(parts["hold"]))


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}
MAX_INT_DIGITS = 18  # any integer a spec needs; longer literals are a typo (and slow z3 down)


def _unquote(tok: Token, path: str) -> str:
    r"""A string literal's text. Escapes: \" \\ \n \t; any other is an error, not a guess."""
    body, out, i = str(tok)[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                line, col = _line_col(tok)
                col += 1 + i
                raise SpecError(f"unknown escape '\\{nxt}' in a string", ast.Pos(path, line, col, line, col + 2),
                                hint='escapes are \\" \\\\ \\n \\t; write \\\\ for a backslash (or use /)')
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _int(tok: Token, path: str) -> int:
    """An integer literal; absurdly long ones are a spec error, not a crash."""
    if len(str(tok)) > MAX_INT_DIGITS:
        raise SpecError(f"integer literal with {len(str(tok))} digits is too large (at most {MAX_INT_DIGITS})",
                        _tok_pos(path, tok))
    return int(tok)


def _fmt_key(key: tuple) -> str:
    return str(key[0]) if len(key) == 1 else "(" + ", ".join(map(str, key)) + ")"
