"""`abstract init DIR`: the templates of a new project and the function that writes them.

The templates are plain files of this package (package data, so an installed wheel has them);
``FILES`` says where each goes in the project. ``equality.py`` is the builder: a module of this
package too, so ruff and mypy check the code a new project starts from.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .. import __version__

# template name in this package -> path in the new project
FILES: dict[str, str] = {
    "equality.causal": "specs/equality.causal",
    "equality.py": "specs/models/equality.py",
    "pytest.ini": "pytest.ini",
    "workflow.yml": ".github/workflows/abstract.yml",
    "README.md": "README.md",
    "gitignore": ".gitignore",
}


class ScaffoldError(Exception):
    """The project cannot be written there (a non-empty folder without --force, a file ...)."""


def template(name: str) -> str:
    """The text of one template, with the project's placeholders still in it."""
    return (files(__name__) / name).read_text(encoding="utf-8")


def scaffold(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write a new project into ``directory`` (created if missing) and return the files written.

    A non-empty folder is refused unless ``force``; then the scaffold's files are overwritten and
    everything else in the folder is left alone. Nothing is written when it is refused."""
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ScaffoldError(f"{root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ScaffoldError(f"{root} is not empty; choose an empty or new folder, or pass --force to "
                            f"write the scaffold's files into it (overwriting those of the same name)")
    blocked = [p for p in (root / dest for dest in FILES.values()) for q in (p, *p.parents)
               if q != root and q.is_relative_to(root) and q.exists() and (q.is_dir() if q == p else not q.is_dir())]
    if blocked:
        raise ScaffoldError(f"cannot write the scaffold into {root}: {blocked[0]} is in the way")
    name = root.resolve().name or "project"
    written = []
    for source, dest in FILES.items():
        text = template(source).replace("__NAME__", name).replace("__REQUIREMENT__", f"abstract=={__version__}")
        path = root / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
