"""The pre-screen heatmap beside the trained one."""
from abstract.report.html import render_variable
from abstract.report.prescreen import prescreen_figure, relative_scores

GRID = {"layers": [0, 1], "positions": ["x", "last"], "position_tokens": ["3", "="], "component": "resid_post",
        "iia_mean": [[None, 0.9], [0.6, None]], "iia_max": [[None, 0.9], [0.6, None]],
        "chosen_site": {"layer": 0, "component": "resid_post", "position": "last"},
        "prescreen": {"score": [[-0.5, 2.0], [1.0, 0.0]], "trained": [[False, True], [True, False]], "top": 2,
                      "pairs": 64}}


def test_relative_scores_are_over_the_best_cell():
    assert relative_scores(GRID["prescreen"]) == [[-0.25, 1.0], [0.5, 0.0]]
    assert relative_scores({"score": [[-1.0, None]]}) == [[0.0, None]]  # nothing predicted to help


def test_prescreen_figure_only_for_prescreened_grids():
    assert prescreen_figure(None, "h", "v") == "" and prescreen_figure({"layers": [0]}, "h", "v") == ""
    fig = prescreen_figure(GRID, "h", "v")
    assert "attribution pre-screen of v" in fig and "Only the top 2 were trained" in fig and "64 training pairs" in fig
    assert ">1.00<" in fig and ">0.50<" in fig


def test_variable_shows_both_heatmaps():
    v = {"iia": {"value": 0.9, "mean": 0.9, "max": 0.9, "correct": 9, "n": 10, "best_seed": 0},
         "site": {"layer": 0, "component": "resid_post", "position": "last"}, "grid": GRID,
         "intervention": {"kind": "das", "dim": 2}, "seeds": []}
    html = render_variable("v", v, "h")
    assert html.count("<svg") == 2 and html.index("IIA of v") < html.index("pre-screen of v")
