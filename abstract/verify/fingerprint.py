"""What the results-cache key hashes besides the spec: abstract's own source, the network's
declaration, its builder file and every local module that builder imports.

A key must change whenever the numbers could: editing a helper module that the builder
imports (``specs/models/x.py`` doing ``from common import Net``) changes the network without
touching the spec or the builder file, so that helper's source is part of the key too.
"Local" means any module file outside the Python installation (standard library,
site-packages) and outside abstract itself (hashed separately by `package_fingerprint`).

Local modules are found two ways, so that the key does not depend on what else a process
imported first: the builder's import statements, followed through the modules they bound
(deterministic), plus every local module that appeared in ``sys.modules`` while the builder
ran (catches ``importlib.import_module`` inside ``build``), remembered per builder file for
the life of the process (a second load reuses the imported modules and imports nothing).
"""
from __future__ import annotations

import ast as pyast
import dataclasses
import functools
import hashlib
import os
import site
import sys
import sysconfig
from pathlib import Path
from typing import Any, Iterable, TypeGuard

from ..language import Spec

_DYNAMIC: dict[Path, set[Path]] = {}  # builder file -> local module files imported while it ran


@functools.lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """Hash of abstract's own source files: a results-cache key part, so that a changed engine
    (an edited checkout, not only a new release number) never serves results it did not make."""
    root = _package_root()
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def _installation_roots() -> tuple[Path, ...]:
    """Folders whose modules are installed code, not the user's: stdlib, site-packages, prefixes."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {p for k in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_paths().get(k))}
    try:
        paths |= set(site.getsitepackages())
    except AttributeError:  # some virtualenv versions
        pass
    if site.ENABLE_USER_SITE and site.USER_SITE:
        paths.add(site.USER_SITE)
    return tuple(sorted({Path(p).resolve() for p in paths if p}))


@functools.lru_cache(maxsize=1)
def _installed_prefixes() -> tuple[str, ...]:
    """String prefixes of installed code (as found and resolved): a cheap first filter."""
    roots = set(_installation_roots())
    roots |= {Path(p).absolute() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    return tuple(str(r).rstrip(os.sep) + os.sep for r in roots)


def is_local_file(file: str | Path | None) -> TypeGuard[str | Path]:
    """A Python source file of the user's (not installed code, not abstract itself)."""
    if not file or not str(file).endswith(".py") or str(file).startswith(_installed_prefixes()):
        return False
    path = Path(file).resolve()
    if not path.is_file() or path.is_relative_to(_package_root()):
        return False
    return not any(path.is_relative_to(root) for root in _installation_roots())


def _module_file(name: str) -> Path | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if is_local_file(file) else None


def _imported_names(source: bytes, package: str = "") -> set[str]:
    """Every module name an import statement in `source` may bind (`from a import b`: a and
    a.b); relative imports are resolved against `package` (the importing module's package)."""
    try:
        tree = pyast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, pyast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if not parts or node.level - 1 > len(parts):
                    continue
                anchor = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{anchor}.{base}" if base else anchor
            if not base:
                continue
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    for name in list(names):  # `import a.b.c` also imports a and a.b
        parts = name.split(".")
        names |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return names


def _package_of(file: Path) -> str:
    """The package a loaded module file belongs to ('' when it is not a loaded package module)."""
    for name, module in list(sys.modules.items()):
        f = getattr(module, "__file__", None)
        if f and str(f).endswith(file.name) and Path(f).resolve() == file:
            return name if file.name == "__init__.py" else name.rpartition(".")[0]
    return ""


def static_local_imports(file: Path) -> set[Path]:
    """Local module files reachable from `file`'s import statements (through loaded modules)."""
    seen: set[Path] = set()
    todo = [file]
    while todo:
        current = todo.pop()
        try:
            source = current.read_bytes()
        except OSError:
            continue
        package = _package_of(current) if current != file else ""
        for name in _imported_names(source, package):
            dep = _module_file(name)
            if dep is not None and dep not in seen and dep != file:
                seen.add(dep)
                todo.append(dep)
    return seen


def record_new_modules(builder: Path | None, before: Iterable[str]) -> None:
    """Remember the local modules that appeared in ``sys.modules`` since `before` (taken just
    before the builder ran), for `builder`'s key."""
    if builder is None:
        return
    new = set(sys.modules) - set(before)
    files = {f for name in new if (f := _module_file(name)) is not None}
    _DYNAMIC.setdefault(builder.resolve(), set()).update(files - {builder.resolve()})


def builder_file(spec: Spec, network_name: str) -> Path | None:
    """The torch builder's file, looked up as the engine does (spec folder, then cwd)."""
    decl = spec.networks[network_name]
    if decl.kind != "torch":
        return None
    file = decl.source.rpartition(":")[0] or decl.source
    for base in (Path(spec.path).parent, Path.cwd()):
        if (base / file).is_file():
            return (base / file).resolve()
    return None


def local_modules(builder: Path) -> list[Path]:
    """The local module files a builder depends on, sorted (its own file excluded)."""
    return sorted(static_local_imports(builder) | _DYNAMIC.get(builder.resolve(), set()))


def canonical(value: Any) -> Any:
    """An AST value without its source positions: the same declaration in a spec read by an
    absolute or a relative path (pytest vs the CLI) gives the same key."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__] + [[f.name, canonical(getattr(value, f.name))]
                                          for f in dataclasses.fields(value) if f.compare]
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    return repr(value)


def network_source_fingerprint(spec: Spec, network_name: str) -> str:
    """The network's declaration and source: for torch networks the builder file's content and
    that of every local module it imports (an encoder or a forward may live there), for local
    HF folders their files' names, sizes and times. Combined in the cache key with the loaded
    weights' fingerprint. Independent of the path the spec was read by."""
    decl = spec.networks[network_name]
    h = hashlib.sha256(repr(canonical((decl.kind, decl.source, decl.options))).encode())
    if decl.kind == "torch":
        builder = builder_file(spec, network_name)
        if builder is not None:
            h.update(builder.read_bytes())
            root = builder.parent
            for dep in local_modules(builder):
                name = dep.relative_to(root) if dep.is_relative_to(root) else dep.name
                h.update(f"\0{name}\0".encode())
                h.update(dep.read_bytes())
    else:
        folder = next((base / decl.source for base in (Path(spec.path).parent, Path.cwd())
                       if (base / decl.source).is_dir()), None)
        if folder is not None:
            for f in sorted(folder.iterdir()):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]
