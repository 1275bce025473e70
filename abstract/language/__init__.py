"""The spec language: Lark grammar (grammar/causal.lark) -> AST -> compiled `Spec`."""
from .compiler import Spec, compile_spec, compile_text, load_spec
from .errors import SpecError
from .parser import parse_file, parse_text

__all__ = ["Spec", "SpecError", "compile_spec", "compile_text", "load_spec", "parse_file", "parse_text"]
