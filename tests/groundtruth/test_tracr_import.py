"""The tracr loader must not make `abstract` depend on JAX: importing the package, the CLI
and the loader itself pulls in neither JAX, haiku nor tracr (they load only when a program
is compiled or tracr's own forward is run)."""
import subprocess
import sys


def test_importing_abstract_does_not_import_jax():
    code = ("import sys, abstract, abstract.cli, abstract.networks.tracr; "
            "bad = [m for m in ('jax', 'haiku', 'tracr') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
