#!/usr/bin/env python3
"""Render a results document to HTML and screenshot it with headless Chromium.

Why: the report is meant to be read by people; a picture of it is the quickest review of layout
changes (and goes in docs/report-screenshot.png).

    python scripts/screenshot_report.py [results.json] [-o docs/report-screenshot.png] [--html out.html]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """The first headless-capable Chromium on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 2400,
               browser: str | None = None, timeout: float = 90.0) -> Path:
    """Screenshot a local HTML file with a throwaway profile and no network chatter."""
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium found on PATH (apt-get install -y chromium)")
    png_path = png_path.resolve()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="abstract-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png_path}",
               f"--window-size={width},{height}", html_path.resolve().as_uri()]
        subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not png_path.is_file():
        raise RuntimeError(f"{browser} exited without writing {png_path}")
    return png_path


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from abstract.report import write_report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="?", default=str(FIXTURE), help="results JSON (default: the test fixture)")
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "report-screenshot.png"))
    p.add_argument("--html", help="also keep the rendered HTML here")
    p.add_argument("--width", type=int, default=1200)
    p.add_argument("--height", type=int, default=2400)
    args = p.parse_args(argv)
    doc = json.loads(Path(args.results).read_text())
    if isinstance(doc, dict) and "results" in doc:  # a results set from several spec files: the first
        doc = doc["results"][0]
    with tempfile.TemporaryDirectory() as tmp:
        html = write_report(doc, Path(args.html) if args.html else Path(tmp) / "report.html")
        out = screenshot(html, Path(args.output), args.width, args.height)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
