"""Symbolic checks of causal models with z3: totality, domains, effectiveness, asserts, equivalence."""

from .checks import DEFAULT_RLIMIT, MAX_RLIMIT, Bound, check_equivalence, check_model, check_spec
from .encode import Encoded, ModelEncoding, decode, encode_expr, in_domain
from .verdicts import COUNTEREXAMPLE, PROVED, UNKNOWN, CheckResult

__all__ = ["Bound", "COUNTEREXAMPLE", "DEFAULT_RLIMIT", "MAX_RLIMIT", "PROVED", "UNKNOWN", "CheckResult", "Encoded",
           "ModelEncoding", "check_equivalence", "check_model", "check_spec", "decode", "encode_expr", "in_domain"]
