"""The HTML alignment report: `render_html(results) -> str`, `write_report(results, path)`, and an
index page for several specs: `render_index`, `write_index`."""
from .html import render_html, write_report
from .index import render_index, write_index

__all__ = ["render_html", "render_index", "write_index", "write_report"]
