"""The HTML alignment report: `render_html(results) -> str`, `write_report(results, path)`."""
from .html import render_html, write_report

__all__ = ["render_html", "write_report"]
