"""abstract: state a causal-abstraction hypothesis in a spec file and verify it against a network.

Layout: `language/` (grammar -> AST -> compiled models), `causal/` (the high-level causal model),
`solver/` (z3 checks), `neural/` (sites, interventions, DAS training), `verify/` (expectations,
CI outputs), `report/` (HTML), `cli.py` (the `abstract` command).
"""
__version__ = "0.1.0"
