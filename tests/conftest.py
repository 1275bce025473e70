# Spec files under tests/ are fixtures read by the tests, not specs to verify.
collect_ignore_glob = ["*.causal"]
