"""The statistical kernel shared by every model: formulas to design matrices
(:mod:`.formula`), the results convention (:mod:`.results`, ``docs/api.md``) and the small
argument checks and drawing helpers (:mod:`.checks`).

Private: the public names are the models' own; this package is what they share. Its names
are imported from their modules on first use (PEP 562), so that a module needing only the
checks does not load patsy.
"""

from .._lazy import on_first_use

_FROM = {
    ".checks": ("DOUBLE_COLUMN", "SINGLE_COLUMN", "check_choice", "check_conf_level", "critical_value", "get_ax",
                "is_sorted_text_categories", "new_figure", "z_value"),
    ".formula": ("INTERCEPT_NAME", "ModelFrame", "capture_env", "clean_frame", "design_for", "formula_variables",
                 "model_frame"),
    ".results": ("RATIO_COLUMNS", "SUMMARY_COLUMNS", "ConvergenceWarning", "ModelResult", "SummaryFrame", "coef_table",
                 "coefficient_plot", "deprecated_name", "renamed_arguments", "with_aliases"),
}
_LAZY = {name: module for module, names in _FROM.items() for name in names}

__all__ = [
    "ConvergenceWarning", "INTERCEPT_NAME", "ModelFrame", "ModelResult", "RATIO_COLUMNS", "SUMMARY_COLUMNS",
    "SummaryFrame", "capture_env", "check_choice", "check_conf_level", "clean_frame", "coef_table", "coefficient_plot",
    "critical_value", "DOUBLE_COLUMN", "SINGLE_COLUMN", "new_figure", "deprecated_name", "design_for", "formula_variables", "get_ax",
    "is_sorted_text_categories", "model_frame",
    "renamed_arguments", "with_aliases", "z_value",
]


__getattr__, __dir__ = on_first_use(__name__, _LAZY)
