"""Network builders whose internals are known exactly (ground truth for the verifier).

Modules here import only torch and numpy at import time; third-party compilers (tracr/JAX)
are imported inside the functions that need them.
"""
