"""One sentence on what a featurizer (pca, sae, mask) settled on, for the console and the report.

Why: a mask's size is learned, and it is the finding (how many units, which ones); a PCA
basis is only as good as the share of variance it keeps; an SAE alignment names features.
"""
from __future__ import annotations

from typing import Any, Optional

MAX_LISTED = 16


def _listed(units: list[Any]) -> str:
    shown = ", ".join(str(u) for u in units[:MAX_LISTED])
    return shown + (f", ... ({len(units) - MAX_LISTED} more)" if len(units) > MAX_LISTED else "")


def featurizer_text(itv: Optional[dict[str, Any]]) -> Optional[str]:
    """The sentence for an intervention entry of the results JSON; None for other kinds."""
    if not isinstance(itv, dict):
        return None
    hidden = itv.get("hidden")
    units = itv.get("open_units")
    if isinstance(units, list):
        if not units:
            return f"mask: no unit open of {hidden} (the learned gate is closed everywhere)"
        return f"mask: {len(units)} of {hidden} units open (effective size {len(units)}): {_listed(units)}"
    features = itv.get("features")
    if isinstance(features, list):
        return f"sae: features {_listed(features) or 'none'} interchanged, the error term kept exact"
    share = itv.get("explained_variance")
    if isinstance(share, (int, float)):
        return (f"pca: the top {itv.get('dim')} principal direction(s) at the site hold "
                f"{100 * share:.1f}% of its variance on the training bases")
    return None
