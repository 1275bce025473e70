"""The `abstract` command: check, align, verify, report, demo, init.

Exit codes (for CI): 0 everything holds, 1 a check or expectation fails, 2 the spec (or a
run) has an error. Errors print as file:line:col with the offending line and a caret.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import __version__
from .device import device_problem
from .language.errors import SpecError

# The demo spec and its builder (models/hier_eq.py, next to it) ship inside the package:
# ``abstract/specs`` links to the repository's top-level ``specs/`` and is copied into wheels.
DEMO_SPEC = ("specs", "hierarchical_equality.causal")

_MARK = {"proved": "ok  ", "counterexample": "FAIL", "unknown": "??  "}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except SpecError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # an output file that cannot be written, a folder that is a file ...
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot write{where}: {err.strerror or err}", file=sys.stderr)
        return 2
    except Exception:  # a bug in abstract, not in the user's spec: say so, with the traceback
        import traceback
        traceback.print_exc()
        print("internal error: this is a bug in abstract, not in your spec; please report it with the spec",
              file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="abstract", description="Check and verify causal-abstraction hypothesis specs.")
    p.add_argument("--version", action="version", version=f"abstract {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="parse specs and prove their symbolic properties with z3 (no network needed)")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--rlimit", type=_rlimit, default=None,
                   help=f"z3 resource limit per query, 1..{2**32 - 1:,} (bounds 'unknown')")
    c.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                   help="time budget for the whole run; checks not decided by then are reported unknown")
    c.add_argument("--json", metavar="FILE", help="write the check results as JSON")
    c.set_defaults(func=cmd_check)

    for name, helptext in (("verify", "run checks and alignments and judge every `expect` (the CI command)"),
                           ("align", "run the alignments of a spec and write the measurements (no pass/fail)")):
        v = sub.add_parser(name, help=helptext)
        v.add_argument("files", nargs="+", metavar="SPEC")
        _add_run_options(v)
        v.set_defaults(func=cmd_verify if name == "verify" else cmd_align)

    r = sub.add_parser("report", help="render a results JSON file as a self-contained HTML report")
    r.add_argument("results", metavar="RESULTS_JSON")
    r.add_argument("-o", "--output", default="report.html", metavar="FILE")
    r.set_defaults(func=cmd_report)

    df = sub.add_parser("diff", help="compare two results JSON files: flipped verdicts, figures that moved "
                                     "beyond their intervals (exit 1 on a regression)")
    df.add_argument("old", metavar="OLD_JSON")
    df.add_argument("new", metavar="NEW_JSON")
    df.add_argument("--markdown", metavar="FILE", help="also write a Markdown summary (PR comment, CI job summary)")
    df.add_argument("--allow-spec-change", action="store_true",
                    help="compare documents of different specs (path or sha256) instead of refusing them")
    df.set_defaults(func=cmd_diff)

    d = sub.add_parser("demo", help="verify the shipped hierarchical-equality spec on an MLP it trains itself")
    d.add_argument("--out", default="out", metavar="DIR", help="where results.json, junit.xml, report.html go")
    d.add_argument("--no-cache", action="store_true", help="retrain even if an identical run is cached")
    d.add_argument("--device", default=None)
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("init", help="scaffold a project: a spec, a torch builder, pytest and CI configuration")
    i.add_argument("directory", metavar="DIR", help="the project folder (created if missing; must be empty)")
    i.add_argument("--force", action="store_true",
                   help="write into a non-empty folder (overwrites the scaffold's files, keeps the others)")
    i.set_defaults(func=cmd_init)

    ex = sub.add_parser("export", help="write saved interventions in another tool's layout (mib: the MIB "
                                       "causal-variable-localization submission)")
    ex.add_argument("format", choices=["mib"], metavar="FORMAT", help="mib")
    ex.add_argument("saved", metavar="SAVED_DIR", help="what --save-interventions DIR wrote")
    ex.add_argument("out", metavar="OUT", help="the submission folder to write")
    ex.add_argument("--results", metavar="RESULTS_JSON", default=None,
                    help="the run's results (verify --json): export the judged seed where several were trained")
    ex.set_defaults(func=cmd_export)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _rlimit(text: str) -> int:
    from .solver.checks import MAX_RLIMIT  # z3 keeps it in 32 bits: larger values would wrap to "no limit"
    value = _positive_int(text)
    if value > MAX_RLIMIT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_RLIMIT:,} (z3's largest resource limit), "
                                         f"got {value:,}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < 10**7:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _add_run_options(v: argparse.ArgumentParser) -> None:
    v.add_argument("--hypothesis", action="append", metavar="NAME", help="only this hypothesis (repeatable)")
    v.add_argument("--json", metavar="FILE", help="write the results document as JSON")
    v.add_argument("--junit", metavar="FILE", help="write JUnit XML (one test case per expectation and check)")
    v.add_argument("--html", metavar="FILE", help="write the HTML alignment report; DIR/ (or several specs): "
                   "one report per spec and an index page linking them")
    v.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    v.add_argument("--seed", type=int, default=0, help="base seed; runs are reproducible per device")
    v.add_argument("--no-cache", action="store_true", help="retrain even if an identical run is cached")
    v.add_argument("--cache-dir", default=None, metavar="DIR", help="results cache (default .abstract-cache/results)")
    v.add_argument("--quiet", action="store_true", help="no progress bars")
    io = v.add_mutually_exclusive_group()
    io.add_argument("--save-interventions", metavar="DIR", default=None,
                    help="write every trained intervention (safetensors + metadata) under DIR/<hypothesis>/")
    io.add_argument("--load-interventions", metavar="DIR", default=None,
                    help="re-measure the interventions saved under DIR instead of training (same spec, "
                         "network and --seed, else exit 2)")
    v.add_argument("--export-mib", metavar="DIR", default=None,
                   help="also write the trained interventions in the MIB submission layout (see `abstract export`)")
    _add_executor_options(v)


def _add_executor_options(v: argparse.ArgumentParser) -> None:
    """Where the sweep's cells train (docs/scale.md): in this process, or on Ray workers."""
    v.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local (default): in this process; ray: on Ray actors (pip install 'abstract[ray]')")
    v.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="an existing Ray cluster (`ray start --head` prints it); default: start a local node")
    v.add_argument("--gpus-per-worker", type=_gpus, default=0.0, metavar="N",
                   help="GPUs per Ray worker, fractions allowed (0.5: two workers per GPU); default 0: CPU workers")
    v.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="Ray workers (default: as many as the cluster's CPUs, or GPUs / --gpus-per-worker)")
    v.add_argument("--cell-cache", default=None, metavar="DIR",
                   help="keep finished sweep cells here so an interrupted sweep resumes (default with "
                        "--executor ray: .abstract-cache/cells; --no-cache turns it off)")


def _gpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GPUs, got {text!r}") from None
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"expected a number of GPUs >= 0, got {text}")
    return value


# ------------------------------------------------------------------ check
def cmd_check(args: argparse.Namespace) -> int:
    """Parse and compile every file (hypotheses included, without torch), then run the z3 checks
    under one bound: ``--rlimit`` per query, ``--timeout`` for the whole run."""
    from .language import load_spec
    from .solver import Bound, check_spec

    bound = Bound.of(args.rlimit or Bound().rlimit, args.timeout)
    worst, everything, compiled = 0, [], []
    for file in args.files:
        try:
            spec = load_spec(file)
        except SpecError as err:
            print(err.render(), file=sys.stderr)
            worst = 2
            continue
        results = check_spec(spec, bound=bound)
        everything += [{"file": file, **r.to_json()} for r in results]
        hyps = [{"file": file, "hypothesis": name, "status": "ok", "plan": plan.to_json()}
                for name, plan in spec.plans.items()]
        compiled += hyps
        print(file)
        if not spec.models:
            print(f"warning: {file} declares no model: nothing to check", file=sys.stderr)
        for h in hyps:
            print(f"  ok   compile    hypothesis {h['hypothesis']}")
        print(format_checks([r.to_json() for r in results]))
        if any(not r.ok for r in results):
            worst = max(worst, 1)
    if args.json:
        _write_json(args.json, {"schema": "abstract.checks/1", "hypotheses": compiled, "checks": everything})
    return worst


def format_checks(checks: list[dict[str, Any]], counted: list[dict[str, Any]] | None = None) -> str:
    """Checks grouped by model, one line each, counterexamples spelled out; the last line counts
    the verdicts of ``counted`` (default: the checks shown), so a reader showing only the failed
    checks still gives the whole file's numbers."""
    from .verify.summary import check_reason
    lines, model = [], None
    for c in checks:
        if c["model"] != model:
            model = c["model"]
            lines.append(f"  {model}")
        lines.append(f"    {_MARK.get(c['verdict'], '?')}  {c['kind']:<10} {c['name']}")
        reason = check_reason(c)  # without the counterexample printed below: shown once
        if c["verdict"] != "proved" and reason:
            lines.append(f"          {reason}")
        if c["verdict"] == "counterexample" and c.get("counterexample"):
            shown = ", ".join(f"{k}={_show(v)}" for k, v in c["counterexample"].items())
            lines.append(f"          counterexample: {shown}")
            if c.get("location"):
                lines.append(f"          at {c['location']}")
    counts = {v: sum(c["verdict"] == v for c in (checks if counted is None else counted))
              for v in ("proved", "counterexample", "unknown")}
    lines.append(f"  {counts['proved']} proved, {counts['counterexample']} counterexample, {counts['unknown']} unknown")
    return "\n".join(lines)


def _show(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


# ------------------------------------------------------------------ verify / align
def _run(args: argparse.Namespace, judge: bool) -> int:
    """verify (judge=True: exit 0/1/2) and align (judge=False: measurements only, exit 0 or 2)."""
    from .verify.cache import DEFAULT_DIR, ResultsCache

    problem = device_problem(args.device)
    if problem:
        print(f"error: --device {args.device}: {problem}", file=sys.stderr)
        return 2
    cache = ResultsCache(args.cache_dir or DEFAULT_DIR, enabled=not args.no_cache)
    from .export.mib import after_run, before_run
    temporary = before_run(args)
    try:
        args.executor_obj, args.cell_cache_obj = _executor(args)
    except ValueError as err:  # ExecutorError: bad input, before any work
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with quiet_progress(args.quiet):
            docs, worst = _run_files(args, judge, cache)
    finally:
        if args.executor_obj is not None:
            args.executor_obj.close()
    if not write_outputs(args, docs):
        worst = 2
    if not after_run(args, docs, temporary):
        worst = 2
    return worst


@contextmanager
def quiet_progress(quiet: bool) -> Iterator[None]:
    """While ``quiet``, silence the progress bars of the libraries a run loads networks with:
    transformers' ("Loading weights", "Writing model shards" of a builder's save_pretrained)
    and huggingface_hub's (downloads). abstract's own bar follows ``progress=``. Restored after,
    so a caller in the same process (a notebook, a test) keeps its settings."""
    if not quiet:
        yield
        return
    restore: list[Callable[[], Any]] = []
    # Import both before reading their state: transformers copies the hub's setting on import.
    # (Not $HF_HUB_DISABLE_PROGRESS_BARS: the hub reads it once, on import, and it could not be undone.)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None  # type: ignore[assignment]
    try:
        from huggingface_hub import utils as hub
    except ImportError:
        hub = None  # type: ignore[assignment]
    if hf_logging is not None and hf_logging.is_progress_bar_enabled():
        restore.append(hf_logging.enable_progress_bar)
    hub_was_off = hub is not None and hub.are_progress_bars_disabled()
    if hub is not None and not hub_was_off:
        restore.append(lambda: hub.enable_progress_bars())
    if hf_logging is not None:
        hf_logging.disable_progress_bar()  # the hub's bars too
    if hub is not None:
        hub.disable_progress_bars()
    try:
        yield
    finally:
        for undo in restore:
            undo()
        if hub_was_off and hf_logging is not None:  # transformers' enable turned the hub's back on
            hub.disable_progress_bars()


def _run_files(args: argparse.Namespace, judge: bool, cache: Any) -> tuple[list[dict[str, Any]], int]:
    """Verify (or align) every spec file: the documents and the worst exit code so far."""
    from .verify.pipeline import error_document, exit_code, verify_spec

    docs: list[dict[str, Any]] = []
    worst = 0
    for file in args.files:
        try:
            doc = verify_spec(file, hypotheses=args.hypothesis, device=args.device, cache=cache,
                              progress=not args.quiet, seed=args.seed,
                              save_interventions=getattr(args, "save_interventions", None),
                              load_interventions=getattr(args, "load_interventions", None),
                              on_event=None if args.quiet else lambda m: print(f"[abstract] {m}", file=sys.stderr),
                              **_executor_kwargs(args))
        except SpecError as err:  # unreadable spec: still a document, so JSON/JUnit/HTML say why
            print(err.render(), file=sys.stderr)
            worst = 2
            docs.append(error_document(file, err))
            continue
        docs.append(doc)
        _print_summary(doc, judge)
        for warning in doc.get("warnings") or []:
            print(f"warning: {warning}", file=sys.stderr)
        code = exit_code(doc)
        worst = max(worst, code if judge else (2 if code == 2 else 0))
    return docs, worst


def _executor(args: argparse.Namespace) -> tuple[Any, Any]:
    """The executor and cell cache the run options ask for (None, None: today's in-process run).
    Raises ValueError (an ExecutorError) for options that cannot work, before any training."""
    executor_name = getattr(args, "executor", "local")
    address, gpus = getattr(args, "ray_address", None), getattr(args, "gpus_per_worker", 0.0)
    workers, cell_dir = getattr(args, "workers", None), getattr(args, "cell_cache", None)
    if executor_name == "local" and address is None and not gpus and workers is None and cell_dir is None:
        return None, None
    from .executors import DEFAULT_CELL_DIR, CellCache, ExecutorError, make_executor
    try:
        executor = make_executor(executor_name, address=address, gpus_per_worker=gpus, workers=workers)
    except ExecutorError as err:
        raise ValueError(str(err)) from None
    cells = cell_dir or (DEFAULT_CELL_DIR if executor_name == "ray" else None)
    return executor, (CellCache(cells, enabled=not args.no_cache) if cells else None)


def _executor_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    executor, cells = getattr(args, "executor_obj", None), getattr(args, "cell_cache_obj", None)
    return {"executor": executor, "cell_cache": cells} if executor is not None or cells is not None else {}


def cmd_verify(args: argparse.Namespace) -> int:
    return _run(args, judge=True)


def cmd_align(args: argparse.Namespace) -> int:
    return _run(args, judge=False)


def _print_summary(doc: dict[str, Any], judge: bool = True) -> None:
    from .verify.summary import format_summary
    print(format_summary(doc, judge=judge))


def write_outputs(args: argparse.Namespace, docs: list[dict[str, Any]]) -> bool:
    """Write every requested output (JSON, JUnit, HTML), each independently of the others:
    one that cannot be written is reported and the rest are still written. True if all were."""
    if not docs:
        return True
    jobs: list[tuple[str, Any]] = []
    if args.json:
        whole = docs[0] if len(docs) == 1 else {"schema": "abstract.results-set/1", "results": docs}
        jobs.append((args.json, lambda: _write_json(args.json, whole, announce=False)))
    if args.junit:
        from .verify.junit import write_junit
        jobs.append((args.junit, lambda: write_junit(docs, args.junit)))
    if args.html:
        from .report import write_index, write_report
        targets, index = html_targets(args.html, docs)
        for doc, path in zip(docs, targets):
            jobs.append((str(path), lambda doc=doc, path=path: write_report(doc, path)))
        if index is not None:
            jobs.append((str(index), lambda: write_index(list(zip(docs, targets)), index)))
    ok = True
    for where, write in jobs:
        try:
            write()
        except (OSError, UnicodeError) as err:
            print(f"error: cannot write {where}: {_why(err)}", file=sys.stderr)
            ok = False
            continue
        print(f"wrote {where}", file=sys.stderr)
    return ok


def html_targets(html: str, docs: list[dict[str, Any]]) -> tuple[list[Path], Path | None]:
    """Where `--html` puts each spec's report, and the index page linking them (None: no index).
    A folder (`--html DIR/`, or one that exists): DIR/<spec>.html each and DIR/index.html. A file:
    that file for one spec; for several, FILE-<spec>.html each and the index at FILE itself."""
    stems: list[str] = []
    for doc in docs:
        stem = Path(str((doc.get("spec") or {}).get("path") or "spec")).stem or "spec"
        k, unique = 2, stem
        while unique in stems:  # two specs of one name in different folders
            unique, k = f"{stem}-{k}", k + 1
        stems.append(unique)
    path = Path(html)
    if html.endswith(("/", os.sep)) or path.is_dir():
        return [path / f"{s}.html" for s in stems], path / "index.html"
    if len(docs) == 1:
        return [path], None
    return [path.with_name(f"{path.stem}-{s}{path.suffix or '.html'}") for s in stems], path


def _why(err: BaseException) -> str:
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _write_json(path: str, obj: Any, announce: bool = True) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=1, default=str))
    if announce:
        print(f"wrote {path}", file=sys.stderr)


# ------------------------------------------------------------------ report / demo
def read_results(path: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The documents of a results JSON file, or None and why it cannot be used (unreadable,
    not a results document, malformed: each bad field's path)."""
    from .verify.shape import document_problems
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        return None, f"cannot read results {path}: {err}"
    docs = results_documents(obj)
    if docs is None:
        schema = obj.get("schema") if isinstance(obj, dict) else None
        return None, (f"{path} is not an abstract results document"
                      + (f" (its schema is {schema!r})" if schema else "")
                      + "; expected what `abstract verify --json` writes (schema abstract.results/1)")
    problems = [(f"results[{i}]: " if len(docs) > 1 else "") + p
                for i, d in enumerate(docs) for p in document_problems(d)]
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        return None, (f"{path} is a malformed abstract.results/1 document (see docs/results-schema.md):\n"
                      f"{shown}{more}")
    return docs, None


def cmd_diff(args: argparse.Namespace) -> int:
    """Exit 1 when a verdict went from pass to fail (or a new error appeared), 0 otherwise,
    2 when a file cannot be used or the specs differ (unless --allow-spec-change)."""
    from .verify.diff import DiffError, diff_documents, format_diff, write_markdown
    runs = []
    for path in (args.old, args.new):
        docs, problem = read_results(path)
        if docs is None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        runs.append(docs)
    try:
        diff = diff_documents(runs[0], runs[1], allow_spec_change=args.allow_spec_change)
    except DiffError as err:
        print(f"error: {args.old} and {args.new}: {err}; pass --allow-spec-change to compare them anyway",
              file=sys.stderr)
        return 2
    print(format_diff(diff, args.old, args.new))
    if args.markdown:
        try:
            write_markdown(diff, args.markdown, args.old, args.new)
        except (OSError, UnicodeError) as err:
            print(f"error: cannot write {args.markdown}: {_why(err)}", file=sys.stderr)
            return 2
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 1 if diff.regression else 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render what `verify --json` wrote; a document readers cannot use is refused (exit 2)
    with the path of each bad field, before anything is written."""
    from .report import write_report
    from .verify.shape import document_problems
    try:
        doc = json.loads(Path(args.results).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        print(f"error: cannot read results {args.results}: {err}", file=sys.stderr)
        return 2
    docs = results_documents(doc)
    if docs is None:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        print(f"error: {args.results} is not an abstract results document"
              + (f" (its schema is {schema!r})" if schema else "")
              + "; expected what `abstract verify --json` writes (schema abstract.results/1)", file=sys.stderr)
        return 2
    problems = [(f"results[{i}]: " if len(docs) > 1 else "") + p
                for i, d in enumerate(docs) for p in document_problems(d)]
    if problems:
        print(f"error: {args.results} is a malformed abstract.results/1 document "
              "(see docs/results-schema.md):", file=sys.stderr)
        for p in problems[:10]:
            print(f"  {p}", file=sys.stderr)
        if len(problems) > 10:
            print(f"  ... and {len(problems) - 10} more", file=sys.stderr)
        return 2
    code = 0
    # the same names as `verify --html` (html_targets): FILE for one spec; for several,
    # FILE-<spec-stem>.html each (a suffix only on collision) and an index page at FILE
    outs, index = html_targets(args.output, docs)
    for d, out in zip(docs, outs):
        try:
            write_report(d, out)
        except OSError as err:
            print(f"error: cannot write {out}: {_why(err)}", file=sys.stderr)
            code = 2
            continue
        print(f"wrote {out}")
    if index is not None:  # an index page linking each spec's report with its verdict
        from .report import write_index
        try:
            write_index(list(zip(docs, outs)), index)
        except OSError as err:
            print(f"error: cannot write {index}: {_why(err)}", file=sys.stderr)
            return 2
        print(f"wrote {index}")
    return code


def results_documents(obj: Any) -> list[dict[str, Any]] | None:
    """The results documents in what `verify --json` wrote (one, or a results-set), else None."""
    if isinstance(obj, dict) and obj.get("schema") == "abstract.results-set/1" and isinstance(obj.get("results"), list):
        docs = obj["results"]
    else:
        docs = [obj]
    ok = bool(docs) and all(isinstance(d, dict) and d.get("schema") == "abstract.results/1" for d in docs)
    return docs if ok else None


def demo_spec() -> Path:
    """The shipped demo spec as a file path (its builder is looked up next to it): inside an
    installed wheel, or, in a checkout, the top-level specs/ file the package's link reaches."""
    from importlib.resources import files
    resource = files("abstract")
    for part in DEMO_SPEC:  # one step at a time: Traversable.joinpath takes one name before Python 3.11
        resource = resource / part
    return Path(str(resource)).resolve()


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = demo_spec()
    spec = os.path.relpath(shipped) if shipped.is_relative_to(Path.cwd()) else str(shipped)
    ns = argparse.Namespace(files=[spec], hypothesis=None, json=str(out / "results.json"),
                            junit=str(out / "junit.xml"), html=str(out / "report.html"), device=args.device, seed=0,
                            no_cache=args.no_cache, cache_dir=None, quiet=False)
    code = _run(ns, judge=True)
    if (out / "report.html").is_file():
        print(f"open {out / 'report.html'} to read the alignment report")
    return code


# ------------------------------------------------------------------ init
def cmd_export(args: argparse.Namespace) -> int:
    from .export.mib import cmd_export as export
    return export(args)


def cmd_init(args: argparse.Namespace) -> int:
    """Write a new project (see abstract/scaffold): exit 0, or 2 when the folder is refused."""
    from .scaffold import ScaffoldError, scaffold
    try:
        written = scaffold(args.directory, force=args.force)
    except ScaffoldError as err:
        print(f"error: abstract init: {err}", file=sys.stderr)
        return 2
    root = Path(args.directory)
    for path in written:
        print(f"wrote {path}")
    print(f"\nnext:\n  cd {root}\n  abstract check specs/equality.causal\n"
          "  abstract verify specs/equality.causal   # trains a small MLP (seconds on CPU), then the alignments\n"
          "  pytest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
