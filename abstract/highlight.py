"""A Pygments lexer for `.causal` hypothesis specs, so docs, terminals and reports can highlight them.

Registered as the ``causal`` entry point of ``pygments.lexers`` (``pygmentize -l causal spec.causal``).
The reserved words mirror grammar/causal.lark (the parser's lexer reserves every quoted word of the
grammar everywhere); tests/test_highlight.py checks the two against each other and against Lark's
own tokenisation of every shipped spec, so a keyword added to the grammar fails a test until it is
highlighted too.
"""
from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String, Text,
                            Whitespace)

__all__ = ["CausalLexer", "RESERVED_WORDS", "highlight_html"]

# Grouped by what they do; their union is every word the grammar reserves (checked in a test).
DECLARATIONS = ("model", "network", "hypothesis", "domain", "table", "input", "output")
STATEMENTS = ("assert", "equivalent", "align", "to", "via", "search", "train", "data", "expect", "control",
              "if", "then", "else", "hold")
OPERATOR_WORDS = ("and", "or", "not")
CONSTANTS = ("true", "false")
TYPES = ("bool",)
WILDCARD = ("_",)  # the default key of a table: `_: 0`
RESERVED_WORDS: frozenset[str] = frozenset(DECLARATIONS + STATEMENTS + OPERATOR_WORDS + CONSTANTS + TYPES + WILDCARD)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_WS = r"(\s+)"


class CausalLexer(RegexLexer):
    """Lexer for the `abstract` hypothesis-spec language (``.causal`` files)."""

    name = "Causal"
    aliases = ["causal", "abstract-causal"]
    filenames = ["*.causal"]
    mimetypes = ["text/x-causal"]
    url = "https://github.com/abstract/abstract"

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            # a declaration names what it declares: highlight the name as a definition
            (r"(model|network|hypothesis)" + _WS + "(" + _NAME + ")",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(domain|table)" + _WS + "(" + _NAME + ")",
             bygroups(Keyword.Declaration, Whitespace, Name.Function)),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(STATEMENTS, suffix=r"\b"), Keyword),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(TYPES, suffix=r"\b"), Keyword.Type),
            (words(WILDCARD, suffix=r"\b"), Keyword.Pseudo),
            ('"', String.Double, "string"),
            (r"\d+\.\d+([eE][-+]?\d+)?|\d+[eE][-+]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            # a call: a table, a builtin (iia, das, pca ...) or an option value with arguments
            ("(" + _NAME + r")(\s*)(?=\()", bygroups(Name.Function, Whitespace)),
            (_NAME, Name),
            (r"\.\.|->|==|!=|<=|>=|//|[<>+\-*%=~]", Operator),
            (r"[{}()\[\],:;.]", Punctuation),
        ],
        "string": [
            (r'\\.', String.Escape),
            # network templates substitute model variables: "{name_a} and {name_b}"
            (r"\{" + _NAME + r"\}", String.Interpol),
            (r'[^"\\\n{]+', String.Double),
            (r"\{", String.Double),
            ('"', String.Double, "#pop"),
            # an unterminated string ends at the line's end, as the grammar's STRING does
            (r"\n", Text, "#pop"),
        ],
    }

    def analyse_text(text: str) -> float:  # Pygments makes it a static method
        """A file declaring a model and a hypothesis over it is very likely a spec."""
        import re
        if re.search(r"^\s*model\s+\w+\s*\{", text, re.M) and re.search(r"^\s*hypothesis\s+\w+\s*:", text, re.M):
            return 0.8
        return 0.0


def highlight_html(text: str, css_class: str = "highlight") -> str:
    """Spec text as highlighted HTML (escaped by Pygments' formatter); style with `HtmlFormatter` CSS."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    return highlight(text, CausalLexer(), HtmlFormatter(cssclass=css_class))


# The few classes the HTML report styles (abstract/report/style.py): keyword, defined name, number, string, comment.
_REPORT_CLASSES = ((Comment, "c"), (String, "s"), (Number, "m"), (Keyword, "k"), (Operator.Word, "k"),
                   (Name.Class, "nd"), (Name.Function, "nf"))


def highlight_line(line: str) -> str:
    """One spec line as escaped HTML with `<span class=..>` around keywords, names being defined, numbers,
    strings and comments. Exact line by line: no token of the language spans a newline."""
    import html
    out = []
    for _, ttype, value in CausalLexer().get_tokens_unprocessed(line):
        css = next((c for t, c in _REPORT_CLASSES if ttype in t), None)
        text = html.escape(value, quote=True)
        out.append(f'<span class="{css}">{text}</span>' if css and value.strip() else text)
    return "".join(out)
