"""JUnit XML for CI dashboards: one <testsuite> per spec file, one <testcase> per check and expectation.

CI systems (GitHub/GitLab/Jenkins) already know how to show JUnit, so a failed expectation or a
z3 counterexample appears there like a failed unit test, with the reason as its message and the
numbers (value, interval, n, controls) as properties.

Times: an expectation's test case carries its share of its hypothesis's ``seconds`` (the
alignment's wall-clock time, which all its expectations share): the hypothesis's time divided
equally over its expectations, so a suite's test-case times add up to the time spent aligning
and a slow hypothesis shows as slow test cases. A result served from the results cache carries
the time of the run that computed it. Checks and errors carry 0 (z3's checks are not timed one
by one); the suite's ``time`` is the whole run's ``run.seconds``.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterable

from .stats import fmt_ci, fmt_value
from .summary import check_reason
from .validity import against, better_site, expectation_do_nothing, shortfalls, site_label


# Characters XML 1.0 cannot hold at all (not even as &#...;): C0 controls but tab/newline/CR,
# lone surrogates, U+FFFE/U+FFFF. ElementTree writes them raw, which no parser accepts.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` with every character XML cannot carry shown as a visible escape (``\\x1b``)."""
    return _NOT_XML.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 0x100
                        else "\\u%04x" % ord(m.group()), text)


def _sanitize(root: ET.Element) -> None:
    """Make every attribute and text in the tree representable in XML (spec text, names and
    messages are user input and may hold control characters)."""
    for el in root.iter():
        for k, v in list(el.attrib.items()):
            el.set(k, xml_safe(str(v)))
        if el.text is not None:
            el.text = xml_safe(str(el.text))
        if el.tail is not None:
            el.tail = xml_safe(str(el.tail))


def _stem(doc: dict[str, Any]) -> str:
    return Path((doc.get("spec") or {}).get("path") or "spec").stem


def _place(case: ET.Element, location: str | None) -> None:
    """file/line attributes (GitLab and others link a failure to the spec line with them)."""
    parts = str(location or "").rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        case.set("file", parts[0])
        case.set("line", parts[1])


def _props(parent: ET.Element, items: Iterable[tuple[str, Any]]) -> None:
    items = [(k, v) for k, v in items if v is not None]
    if items:
        props = ET.SubElement(parent, "properties")
        for k, v in items:
            ET.SubElement(props, "property", name=str(k), value=str(v))


def _cex_text(cex: dict[str, Any] | None) -> str:
    if not cex:
        return ""
    return ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in cex.items())


def _check_case(suite: ET.Element, stem: str, c: dict[str, Any]) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=f"{stem}.checks.{c.get('model', '')}",
                         name=str(c.get("name", c.get("kind", "check"))), time="0")
    _place(case, c.get("location"))
    _props(case, [("kind", c.get("kind")), ("verdict", c.get("verdict")), ("location", c.get("location"))])
    verdict = c.get("verdict")
    if verdict == "counterexample":
        cex = _cex_text(c.get("counterexample"))
        msg = f"counterexample: {cex}" if cex else (c.get("message") or "counterexample")
        fail = ET.SubElement(case, "failure", message=msg, type="counterexample")
        fail.text = "\n".join(x for x in (check_reason(c), f"input: {cex}" if cex else "",
                                          f"at {c['location']}" if c.get("location") else "") if x)
    elif verdict != "proved":
        fail = ET.SubElement(case, "failure", message=f"unknown: {c.get('message') or 'z3 gave up (rlimit)'}",
                             type="unknown")
        fail.text = c.get("message") or ""
    return case


def expectation_seconds(h: dict[str, Any]) -> float:
    """Each expectation's share of its hypothesis's time (0 when the document has none)."""
    seconds, count = h.get("seconds"), len(h.get("expectations") or [])
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0 or not count:
        return 0.0  # absent, null, negative or nan
    return min(float(seconds), 1e9) / count


def _expectation_case(suite: ET.Element, stem: str, h: dict[str, Any], e: dict[str, Any]) -> ET.Element:
    case = ET.SubElement(suite, "testcase", classname=f"{stem}.{h.get('name', '')}", name=str(e.get("text", "")),
                         time=f"{expectation_seconds(h):.3f}")
    _place(case, e.get("location"))
    items: list[tuple[str, Any]] = [("value", fmt_value(e.get("value"), 4)),
                                    ("ci", fmt_ci(e.get("ci_low"), e.get("ci_high"), 4)),
                                    ("confidence", e.get("confidence")), ("correct", e.get("correct")),
                                    ("n", e.get("n")), ("location", e.get("location"))]
    base = expectation_do_nothing(h, e)
    if base is not None:  # what leaving the site unchanged scores on the same pairs
        items += [("do_nothing", fmt_value(base["value"], 4)),
                  ("do_nothing.ci", fmt_ci(base["ci_low"], base["ci_high"], 4) if base["ci_low"] is not None else None),
                  ("do_nothing.correct", base["correct"]), ("do_nothing.n", base["n"])]
    versus = against(e)
    if versus is not None:  # the right-hand figure of a relative expectation
        items += [("against", versus.get("text")), ("against.value", fmt_value(versus["value"], 4)),
                  ("against.ci", fmt_ci(versus["ci_low"], versus["ci_high"], 4)
                   if versus["ci_low"] is not None else None),
                  ("against.correct", versus["correct"]), ("against.n", versus["n"]),
                  ("against.margin", versus.get("margin")),
                  ("against.difference", fmt_value(versus["difference"], 4) if versus["difference"] is not None
                   else None),
                  ("against.same_pairs", _bool(versus.get("same_pairs")))]
    if e.get("metric") == "iia" and e.get("args"):
        var = (h.get("variables") or {}).get(e["args"][0]) or {}
        site = var.get("site") or {}
        pos = site.get("position")
        where = f"layer {site.get('layer')} {site.get('component') or ''} {'' if pos is None else pos}".strip()
        if site.get("head") is not None:
            where += f" head {site['head']}"
        if site.get("heads"):
            where += " heads " + ", ".join(f"{la}.{hd}" for la, hd in site["heads"])
        items += [("site", where if site else None),
                  ("site.trivial", _bool(site.get("trivial"))),
                  ("iia_mean_over_seeds", (var.get("iia") or {}).get("mean"))]
        better = better_site(var)
        if better is not None:
            comp = site.get("component") or (var.get("grid") or {}).get("component")
            items += [("better_site", site_label(better, comp)),
                      ("better_site.iia", fmt_value(better.get("iia"), 4)),
                      ("better_site.ci_low", fmt_value(better.get("ci_low"), 4))]
        items += [(f"control.{k}", fmt_value((c or {}).get("iia"), 4)) for k, c in (var.get("controls") or {}).items()]
        joint = var.get("joint") or {}
        if joint:
            key = ",".join(joint.get("group") or [])
            j = ((h.get("multi") or {}).get("joint") or {}).get(key) or {}
            items += [("joint.group", key), ("joint.block", joint.get("block")),
                      ("joint.iia_all_interchanged", fmt_value(j.get("value"), 4))]
    pre = h.get("preflight") or {}
    items += [("preflight.task_accuracy", fmt_value(pre.get("task_accuracy"), 4) if pre else None),
              ("preflight.n", pre.get("n"))]
    items += [(f"dataset.shortfall.{split}", f"{found}/{wanted}")
              for split, found, wanted in shortfalls(h.get("dataset"))]
    _props(case, items)
    if not e.get("passed"):
        fail = ET.SubElement(case, "failure", message=str(e.get("reason") or "expectation not met"), type="expectation")
        fail.text = f"{e.get('text')}\n{e.get('reason')}" + (f"\nat {e['location']}" if e.get("location") else "")
    else:
        ET.SubElement(case, "system-out").text = str(e.get("reason") or "")
    return case


def _bool(x: Any) -> str | None:
    return None if x is None else str(bool(x)).lower()


def build_junit(docs: dict[str, Any] | list[dict[str, Any]]) -> ET.Element:
    """The <testsuites> element for one results document or several (one suite per spec file)."""
    docs = [docs] if isinstance(docs, dict) else list(docs)
    root = ET.Element("testsuites", name="abstract")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for doc in docs:
        stem = _stem(doc)
        run = doc.get("run") or {}
        suite = ET.SubElement(root, "testsuite", name=stem)
        if run.get("started"):
            suite.set("timestamp", str(run["started"]))
        _props(suite, [("spec", (doc.get("spec") or {}).get("path")), ("sha256", (doc.get("spec") or {}).get("sha256")),
                       ("device", run.get("device")), ("cached", run.get("cached"))]
               + [(k, run.get(k)) for k in ("abstract", "torch", "transformers", "python")]
               + [(f"preflight.{h.get('name')}.task_accuracy", fmt_value(h["preflight"].get("task_accuracy"), 4))
                  for h in doc.get("hypotheses") or [] if h.get("preflight")])
        cases = [_check_case(suite, stem, c) for c in doc.get("checks") or []]
        for h in doc.get("hypotheses") or []:
            cases += [_expectation_case(suite, stem, h, e) for e in h.get("expectations") or []]
        for err in doc.get("errors") or []:
            case = ET.SubElement(suite, "testcase", classname=f"{stem}.errors",
                                 name=str(err.get("hypothesis") or err.get("location") or "error"), time="0")
            el = ET.SubElement(case, "error", message=str(err.get("message", "error")), type="error")
            el.text = str(err.get("message", "")) + (f"\nat {err['location']}" if err.get("location") else "")
            cases.append(case)
        counts = {"tests": len(cases), "failures": sum(c.find("failure") is not None for c in cases),
                  "errors": sum(c.find("error") is not None for c in cases)}
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
        suite.set("skipped", "0")
        suite.set("time", f"{float(run.get('seconds') or 0):.3f}")
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{sum(float((d.get('run') or {}).get('seconds') or 0) for d in docs):.3f}")
    _sanitize(root)
    return root


def junit_xml(docs: dict[str, Any] | list[dict[str, Any]]) -> str:
    """JUnit XML as a string, with an XML declaration."""
    root = build_junit(docs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(docs: dict[str, Any] | list[dict[str, Any]], path: str | Path) -> Path:
    """Write JUnit XML for one or several results documents; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(docs), encoding="utf-8")
    return path
