"""Head grids in the report and the console: a layer x head heatmap per position, the chosen head
outlined in its own map only, and every site label naming its component and head."""
from __future__ import annotations

import re

from abstract.report.heads import head_heatmaps, head_text, split_by_position
from abstract.verify.validity import site_label, trivial_sites

GRID = {"layers": [0, 1], "positions": ["b", "last", "b", "last", "b", "last"], "heads": [0, 0, 1, 1, 2, 2],
        "position_tokens": ["gray", "=", "gray", "=", "gray", "="], "component": "head_out",
        "iia_mean": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.7, 0.8, 0.9, 1.0, 0.15, 0.25]],
        "iia_max": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.7, 0.8, 0.9, 1.0, 0.15, 0.25]],
        "trivial": [[False] * 6, [False, False, False, False, True, False]]}


def test_a_head_grid_splits_into_one_layer_by_head_map_per_position():
    parts = split_by_position(GRID)
    assert [p for p, _, _ in parts] == ["b", "last"]
    _, token, last = parts[1]
    assert token == "=" and last["positions"] == ["H0", "H1", "H2"]
    assert last["iia_max"] == [[0.2, 0.4, 0.6], [0.8, 1.0, 0.25]]
    assert parts[0][2]["trivial"] == [[False] * 3, [False, False, True]]


def test_head_heatmaps_outline_the_chosen_head_in_its_own_position_only():
    site = {"layer": 1, "component": "head_out", "position": "last", "head": 1}
    html = head_heatmaps(GRID, site, "h: IIA of a")
    figs = html.split("<figure")[1:]
    assert len(figs) == 2
    assert all("rows: layer · columns: head" in f for f in figs)
    assert 'class="chosen"' not in figs[0] and figs[1].count('class="chosen"') == 1
    # the outline sits on row 1 (layer 1), column 1 (head 1): x = left + 1 * 76 + 1.5, y = top + 40 + 1.5
    assert re.search(r'class="chosen" x="133.5" y="99.5"', figs[1]), figs[1]
    assert "1.00" in figs[1] and "1.00" not in figs[0]


def test_site_labels_name_component_and_heads():
    assert site_label({"layer": 0, "component": "resid_pre", "position": "last"}) == "L0.resid_pre@last"
    assert site_label({"layer": 0, "component": "attn_out", "position": "last"}) == "L0.attn_out@last"
    assert site_label({"layer": 9, "component": "head_out", "position": "last", "head": 6}) == "L9.H6.head_out@last"
    assert site_label({"layer": 9, "component": "head_out", "position": "last", "heads": [[9, 6], [10, 1]]}) == \
        "H[9.6,10.1].head_out@last"
    assert head_text({"head": 3}) == ", head 3" and head_text({"layer": 1}) == ""
    assert trivial_sites(GRID) == [{"layer": 1, "component": "head_out", "position": "b", "head": 2}]
