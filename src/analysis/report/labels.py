"""Readable labels for model terms and columns: one map, extended by the user.

Model summaries name terms as formulas do (``class_benzodiazepine[T.True]``,
``sex[T.male]``, ``drug_rapamycin``); every table and figure of the report shows them
through :func:`label` instead. Add or change labels with :func:`register_labels` (for
example in a notebook cell before the report's sections, or in your own code): a label
given for a column (``"baseline_gad7"``) is used for all its terms.

Examples
--------
>>> from analysis.report.labels import label, register_labels
>>> label("class_benzodiazepine[T.True]")
'Benzodiazepine use (yes vs no)'
>>> label("sex[T.male]"), label("drug_rapamycin"), label("age")
('Sex: male (vs reference)', 'Rapamycin', 'Age (per year)')
>>> register_labels({"baseline_madrs": "Baseline MADRS (per point)"})
>>> label("baseline_madrs"), label("my_column")
('Baseline MADRS (per point)', 'My column')
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["LABELS", "CHARACTERISTICS", "label", "register_labels", "exposure_label", "characteristic_label"]

#: column or term -> label (extend with :func:`register_labels`)
LABELS: dict[str, str] = {
    "age": "Age (per year)",
    "sex": "Sex",
    "weight_kg": "Weight (per kg)",
    "diagnosis": "Diagnosis",
    "site": "Site",
    "prior_treatment_failures": "Prior treatment failures (per failure)",
    "comorbid_ptsd": "Comorbid PTSD",
    "baseline_score": "Baseline score (per point)",
    "baseline_gad7": "Baseline GAD-7 (per point)",
    "completed_induction": "Completed induction",
    "dose_mg_per_kg": "Dose (per mg/kg)",
    "dose_mg": "Dose (per mg)",
    "dissociation": "Dissociation (CADSS, per point)",
    "benzo_dze_mg": "Benzodiazepine dose (per mg diazepam equivalent)",
    "interval": "Infusion number",
    "route": "Route",
    "n_sessions": "Sessions",
}

#: Table 1 rows: column -> label (extend with :func:`register_labels`, ``characteristics=True``)
CHARACTERISTICS: dict[str, str] = {
    "n": "Patients", "age": "Age, years", "sex": "Sex", "weight_kg": "Weight, kg", "diagnosis": "Diagnosis",
    "prior_treatment_failures": "Prior treatment failures", "comorbid_ptsd": "Comorbid PTSD",
    "baseline_score": "Baseline score", "completed_induction": "Completed induction", "site": "Site",
}

_TERM = re.compile(r"^(?P<column>[^\[]+)\[T\.(?P<level>.*)\]$")


def register_labels(labels: Mapping[str, str], *, characteristics: bool = False) -> None:
    """Add or replace labels (by column or by full term); with ``characteristics=True`` the
    labels of Table 1's rows."""
    (CHARACTERISTICS if characteristics else LABELS).update({str(k): str(v) for k, v in labels.items()})


def characteristic_label(column: str) -> str:
    """The label of a Table 1 row: ``age`` -> ``Age, years``."""
    return CHARACTERISTICS.get(str(column), str(column).replace("_", " ").capitalize())


def exposure_label(column: str) -> str:
    """``drug_rapamycin`` -> ``Rapamycin``; ``class_benzodiazepine`` -> ``Benzodiazepine use``."""
    if column in LABELS:
        return LABELS[column]
    if column.startswith("drug_"):
        return column.removeprefix("drug_").replace("_", " ").capitalize()
    if column.startswith("class_"):
        return column.removeprefix("class_").replace("_", " ").capitalize() + " use"
    return column.replace("_", " ").capitalize()


def label(term: str) -> str:
    """The readable label of a model term or a column."""
    term = str(term)
    if term in LABELS:
        return LABELS[term]
    match = _TERM.match(term)
    if match:
        column, level = match["column"], match["level"]
        if level in ("True", "true", "1"):
            base = exposure_label(column) if column.startswith(("drug_", "class_")) else LABELS.get(
                column, column.replace("_", " ").capitalize())
            return f"{base} (yes vs no)"
        base = LABELS.get(column, column.replace("_", " ").capitalize())
        return f"{base}: {level} (vs reference)"
    if term.startswith(("drug_", "class_")):
        return exposure_label(term)
    return term.replace("_", " ").capitalize()
