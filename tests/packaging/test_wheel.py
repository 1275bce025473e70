"""A built wheel works without the repository: it parses specs with its packaged grammar and runs
the demo from its packaged spec and builder.

The wheel is built from a copy of the project's sources (so no build/ or egg-info lands in the
working tree), installed into a fresh virtual environment, and run from an empty folder. The
environment borrows the dependencies (torch, z3 ...) of the interpreter running the tests through
a ``.pth`` line naming its site-packages: a plain path line, so that folder's own ``.pth`` files
(the editable install of this checkout among them) are not processed and cannot shadow the wheel.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "abstract", "grammar", "specs")
SHIPPED = ("grammar/causal.lark", "specs/hierarchical_equality.causal", "specs/models/hier_eq.py")


def _copy_sources(dest: Path) -> Path:
    """The project files a build reads, links kept as links (as a git checkout has them)."""
    dest.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".abstract-cache", "*.egg-info", "build")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def _venv(where: Path) -> tuple[Path, Path]:
    """A fresh venv (no pip of its own) that sees this interpreter's dependencies; its python and
    site-packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(where)], cwd=where.parent)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=where.parent).stdout.strip())
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))  # in order, once each
    (site / "_abstract_test_deps.pth").write_text("".join(f"{p}\n" for p in ours))
    return python, site


def _pip_install(python: Path, *args: str) -> None:
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          "--no-build-isolation", "--disable-pip-version-check", *args], cwd=python.parent)


def _clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONNOUSERSITE="1", ABSTRACT_CACHE_DIR=str(cache))
    return env


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel, install it into a fresh venv; an empty working folder to run it from."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    dist = tmp / "dist"
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_wheel({str(dist)!r})"], cwd=src)
    wheel = next(dist.glob("abstract-*.whl"))
    python, site = _venv(tmp / "venv")
    _pip_install(python, str(wheel))
    cwd = tmp / "cwd"
    cwd.mkdir()
    return {"wheel": wheel, "python": python, "site": site, "cwd": cwd, "cache": tmp / "cache",
            "abstract": python.parent / ("abstract.exe" if os.name == "nt" else "abstract")}


def test_wheel_ships_the_grammar_and_the_demo_spec_with_its_builder(wheel_env):
    names = set(zipfile.ZipFile(wheel_env["wheel"]).namelist())
    for rel in SHIPPED:
        assert f"abstract/{rel}" in names, sorted(n for n in names if not n.endswith(".py"))
    with zipfile.ZipFile(wheel_env["wheel"]) as z:  # the files themselves, not links to the repo
        for rel in SHIPPED:
            assert z.read(f"abstract/{rel}") == (ROOT / rel).read_bytes(), rel


def test_installed_wheel_checks_specs_from_an_empty_folder(wheel_env):
    """`abstract check` proves a shipped spec and locates a syntax error in a user's, in one run."""
    spec = wheel_env["site"] / "abstract" / "specs" / "hierarchical_equality.causal"
    assert spec.is_file() and not spec.is_symlink()
    (wheel_env["cwd"] / "broken.causal").write_text("model M {\n    input a : 0..3\n    output y = a == == a\n}\n")
    env = _clean_env(wheel_env["cache"])
    done = subprocess.run([str(wheel_env["abstract"]), "check", str(spec), "broken.causal"], cwd=wheel_env["cwd"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)  # 2: the broken spec
    assert "22 proved, 0 counterexample, 0 unknown" in done.stdout, (done.stdout, done.stderr)
    assert "broken.causal:3:21: error: unexpected '=='" in done.stderr, done.stderr
    # It was the wheel that parsed them, with the grammar it ships; and the demo finds its spec there.
    probe = ("import abstract, abstract.cli as c, abstract.language.parser as p; "
             "print(abstract.__file__); print(p._parser().source_path); print(c.demo_spec())")
    where, grammar, demo = _run([str(wheel_env["python"]), "-c", probe], cwd=wheel_env["cwd"],
                                env=env).stdout.splitlines()[:3]
    assert Path(where).is_relative_to(wheel_env["site"]), where
    assert grammar == "PackageResource(pkg_name='abstract', path='grammar/causal.lark')", grammar
    assert Path(demo) == spec and (spec.parent / "models" / "hier_eq.py").is_file()


@pytest.mark.slow
def test_installed_wheel_runs_the_demo(wheel_env):
    """The whole demo (about a minute on 2 CPU cores): the shipped spec, its builder training the
    MLP, every hypothesis judged, and the three output files."""
    env = _clean_env(wheel_env["cache"])
    _run([str(wheel_env["abstract"]), "demo", "--out", "out", "--device", "cpu"], cwd=wheel_env["cwd"], env=env,
         timeout=900)
    out = wheel_env["cwd"] / "out"
    doc = json.loads((out / "results.json").read_text())
    assert doc["passed"] is True and not doc["errors"], doc.get("errors")
    assert {h["name"] for h in doc["hypotheses"]} == {"both_equalities", "both_equalities_joint", "first_identity"}
    assert (out / "junit.xml").is_file() and (out / "report.html").stat().st_size > 10_000
    assert list((wheel_env["cache"] / "models").glob("hier_eq-*.safetensors")), "the builder's weights went elsewhere"


def test_package_data_folders_are_links_to_the_top_level_ones():
    """One copy in the repository: abstract/grammar and abstract/specs are the top-level folders
    (a checkout that turned the links into plain files would fail here, not in a user's hands)."""
    for name in ("grammar", "specs"):
        link = ROOT / "abstract" / name
        assert link.is_symlink() and os.readlink(link) == f"../{name}", link
        assert link.resolve() == (ROOT / name).resolve()


def test_demo_in_a_checkout_runs_the_top_level_spec():
    """From a checkout the demo names specs/hierarchical_equality.causal (as before the package
    shipped it), so its results and cache entries match `abstract verify specs/...`."""
    from abstract.cli import demo_spec
    assert demo_spec() == (ROOT / "specs" / "hierarchical_equality.causal").resolve()


@pytest.mark.slow
def test_editable_install_parses_through_the_links(tmp_path):
    """`pip install -e` (what scripts/setup.sh does) reads the grammar through the same links.
    Slow tier: about 3 s, and every default-suite run already parses through the links."""
    src = _copy_sources(tmp_path / "src")
    python, _ = _venv(tmp_path / "venv")
    _pip_install(python, "-e", str(src))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    probe = ("import abstract, abstract.cli as c; from abstract.language import load_spec; "
             "s = load_spec(str(c.demo_spec())); print(abstract.__file__); print(c.demo_spec().resolve()); "
             "print(sorted(s.models))")
    done = _run([str(python), "-c", probe], cwd=cwd, env=_clean_env(tmp_path / "cache"))
    where, demo, models = done.stdout.splitlines()
    assert Path(where) == src / "abstract" / "__init__.py"
    assert Path(demo) == src / "specs" / "hierarchical_equality.causal"
    assert "HierarchicalEquality" in models


@pytest.mark.slow
def test_the_sdist_route_ships_them_too(tmp_path):
    """`python -m build` builds the wheel from the sdist: the sdist carries the linked files as
    plain files, and the wheel built from it ships them."""
    src = _copy_sources(tmp_path / "src")
    build = "from setuptools import build_meta; print(build_meta.{}({!r}))"
    sdist = tmp_path / "dist" / _run([sys.executable, "-c", build.format("build_sdist", str(tmp_path / "dist"))],
                                     cwd=src).stdout.split()[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    unpacked = next((tmp_path / "unpacked").iterdir())
    for rel in SHIPPED:
        assert (unpacked / "abstract" / rel).is_file() and not (unpacked / "abstract" / rel).is_symlink(), rel
    _run([sys.executable, "-c", build.format("build_wheel", str(tmp_path / "wheels"))], cwd=unpacked)
    names = set(zipfile.ZipFile(next((tmp_path / "wheels").glob("*.whl"))).namelist())
    assert {f"abstract/{rel}" for rel in SHIPPED} <= names
