"""Data format v1: the tables of a dataset, their columns, types, units and allowed values.

This module is the one place the format is written down in code. Validation
(:mod:`analysis.validation`) enforces it, the loader (:mod:`analysis.dataset`) converts to
its types, and ``docs/data-format.md`` embeds the data dictionary generated from it by
:func:`data_dictionary_markdown` (a test keeps the two identical).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ColumnSpec", "TableSpec", "TABLES", "ROUTES", "PHASES", "SEXES", "FORMAT_VERSION", "data_dictionary_markdown"]

FORMAT_VERSION = "1"

ROUTES = ("iv", "im", "intranasal", "oral", "sublingual")
PHASES = ("induction", "maintenance", "booster")
SEXES = ("female", "male", "other", "unknown")

#: spellings met in exports, mapped to the format's values (keys are lower case)
ROUTE_ALIASES = {
    "intravenous": "iv", "i.v.": "iv", "infusion": "iv",
    "intramuscular": "im", "i.m.": "im",
    "nasal": "intranasal", "in": "intranasal", "esketamine": "intranasal", "spray": "intranasal",
    "po": "oral", "by mouth": "oral",
    "sl": "sublingual", "lozenge": "sublingual", "troche": "sublingual",
}
SEX_ALIASES = {"f": "female", "m": "male", "woman": "female", "man": "male", "u": "unknown", "x": "other"}


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table in data format v1.

    ``kind`` is one of ``"id"`` (string identifier), ``"text"``, ``"category"`` (one of
    ``allowed``), ``"number"`` (float), ``"integer"``, ``"boolean"`` (true/false, 1/0,
    yes/no) or ``"day"`` (a study day: a number, never a calendar date).
    """

    name: str
    kind: str
    required: bool
    description: str
    example: str
    unit: str = ""
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = True
    warn_below: float | None = None
    warn_above: float | None = None

    @property
    def categories(self) -> tuple[str, ...] | None:
        """The categories of this ``"category"`` column in a loaded dataset, when they are fixed:
        its allowed values in sorted order (so that sorting and grouping by category order
        give the order of the text); None for other columns and for ``instrument``, whose
        categories are the instruments the loaded assessments record, sorted (instruments
        can be registered at any time).

        Examples
        --------
        >>> from analysis.schema import TABLES
        >>> TABLES["sessions"].column("route").categories
        ('im', 'intranasal', 'iv', 'oral', 'sublingual')
        >>> TABLES["assessments"].column("instrument").categories is None
        True
        """
        if self.kind != "category" or not self.allowed:
            return None
        return tuple(sorted(self.allowed))

    @property
    def type_name(self) -> str:
        return {"id": "string", "text": "string", "category": "string", "day": "number"}.get(self.kind, self.kind)

    def allowed_text(self) -> str:
        if self.kind == "boolean":
            return "true, false"
        if self.allowed:
            return ", ".join(self.allowed)
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f"{_fmt(lo)} to {_fmt(hi)}"
        if lo is not None:
            return f">= {_fmt(lo)}" if lo != 0 or self.kind != "number" else ">= 0"
        if hi is not None:
            return f"<= {_fmt(hi)}"
        return ""


@dataclass(frozen=True)
class TableSpec:
    """One table of a dataset: its columns and what happens to columns not listed."""

    name: str
    required: bool
    description: str
    columns: tuple[ColumnSpec, ...]
    extra_columns: str  # what happens to other columns, in words
    unique: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r} in format v1")

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _fmt(x: float) -> str:
    return f"{x:g}"


PATIENTS = TableSpec(
    name="patients",
    required=True,
    description="One row per patient.",
    unique=("patient_id",),
    extra_columns="kept as patient-level covariates (after the anonymisation guard)",
    columns=(
        ColumnSpec("patient_id", "id", True, "Pseudonymous patient identifier, unique in this table.", "P0001", nullable=False),
        ColumnSpec("site", "text", False, "Clinic or trial site.", "site_A"),
        ColumnSpec("age", "number", False, "Age at the index date, top-coded at 90 (any age over 89 is recorded as 90).",
                   "47", unit="years", minimum=0, maximum=90, warn_below=16),
        ColumnSpec("sex", "category", False, "Sex (also accepted: f, m).", "female", allowed=SEXES),
        ColumnSpec("weight_kg", "number", False, "Body weight at the index date.", "72.5", unit="kg",
                   minimum=0, maximum=400, warn_below=35, warn_above=250),
        ColumnSpec("diagnosis", "text", False, "Primary diagnosis, e.g. MDD, bipolar depression.", "MDD"),
        ColumnSpec("prior_treatment_failures", "integer", False, "Number of adequate antidepressant trials that failed.",
                   "3", minimum=0, warn_above=20),
        ColumnSpec("comorbid_ptsd", "boolean", False, "Comorbid post-traumatic stress disorder.", "false"),
    ),
)

SESSIONS = TableSpec(
    name="sessions",
    required=True,
    description="One row per ketamine or esketamine session (infusion, injection, spray or lozenge).",
    extra_columns="kept as session-level covariates",
    columns=(
        ColumnSpec("patient_id", "id", True, "Patient; must appear in `patients`.", "P0001", nullable=False),
        ColumnSpec("day", "day", True, "Study day of the session: days since the patient's index date; "
                   "may be negative or fractional.", "0", unit="days", nullable=False),
        ColumnSpec("route", "category", True, "Route of administration (also accepted: intravenous, "
                   "intramuscular, nasal, lozenge, ...).", "iv", allowed=ROUTES, nullable=False),
        ColumnSpec("dose_mg_per_kg", "number", False, "Weight-based dose (IV, IM). At least one of "
                   "`dose_mg_per_kg` and `dose_mg` must be present as a column.", "0.5", unit="mg/kg",
                   minimum=0, warn_below=0.05, warn_above=2.0),
        ColumnSpec("dose_mg", "number", False, "Total dose (intranasal esketamine 28/56/84 mg, oral, sublingual).",
                   "56", unit="mg", minimum=0, warn_above=1000),
        ColumnSpec("duration_min", "number", False, "Infusion duration.", "40", unit="minutes", minimum=0, warn_above=240),
        ColumnSpec("bolus_mg", "number", False, "Part of the dose given as a bolus.", "10", unit="mg", minimum=0, warn_above=200),
        ColumnSpec("dissociation", "number", False, "Dissociation during the session, CADSS total.", "18",
                   unit="CADSS points", minimum=0, maximum=92),
        ColumnSpec("completed", "boolean", False, "False when the session was stopped early.", "true"),
        ColumnSpec("phase", "category", False, "Treatment phase of the session.", "induction", allowed=PHASES),
    ),
)

ASSESSMENTS = TableSpec(
    name="assessments",
    required=True,
    description="One row per completed questionnaire or rating. An assessment on the same day as a "
                "session was taken before that session.",
    extra_columns="`item_1` ... `item_n` are item scores checked against the instrument's item range; "
                  "other columns are kept",
    columns=(
        ColumnSpec("patient_id", "id", True, "Patient; must appear in `patients`.", "P0001", nullable=False),
        ColumnSpec("day", "day", True, "Study day of the assessment.", "13.5", unit="days", nullable=False),
        ColumnSpec("instrument", "category", True, "A registered instrument (PHQ-9, MADRS, QIDS-SR16, BDI-II, "
                   "HAM-D17, GAD-7, PCL-5, CADSS, or one registered by the user); names are matched "
                   "ignoring case, spaces and hyphens.", "PHQ-9", nullable=False),
        ColumnSpec("score", "number", True, "Total score, within the instrument's range.", "17", unit="points",
                   nullable=False),
    ),
)

MEDICATIONS = TableSpec(
    name="medications",
    required=False,
    description="One row per period on a concomitant or adjunct drug.",
    extra_columns="kept",
    columns=(
        ColumnSpec("patient_id", "id", True, "Patient; must appear in `patients`.", "P0001", nullable=False),
        ColumnSpec("drug", "text", True, "Drug name (generic).", "rapamycin", nullable=False),
        ColumnSpec("start_day", "day", True, "First study day on the drug.", "24", unit="days", nullable=False),
        ColumnSpec("end_day", "day", False, "Last study day on the drug; empty means ongoing. "
                   "Must not be before `start_day`.", "60", unit="days"),
        ColumnSpec("drug_class", "text", False, "Drug class; filled from the built-in map for known drugs "
                   "(rapamycin, benzodiazepines by name, lamotrigine, ...).", "benzodiazepine"),
        ColumnSpec("dose_mg", "number", False, "Dose per administration (benzodiazepines are also converted "
                   "to diazepam-equivalents).", "6", unit="mg", minimum=0, warn_above=2000),
        ColumnSpec("timing", "text", False, "When it is taken, e.g. pre-session, daily, as needed.", "pre-session"),
    ),
)

#: the tables of format v1, in loading order
TABLES: dict[str, TableSpec] = {t.name: t for t in (PATIENTS, SESSIONS, ASSESSMENTS, MEDICATIONS)}


def data_dictionary_markdown() -> str:
    """The data dictionary of format v1 as Markdown tables, one per table.

    Examples
    --------
    >>> from analysis.schema import data_dictionary_markdown
    >>> "| patient_id |" in data_dictionary_markdown()
    True
    """
    lines: list[str] = []
    for table in TABLES.values():
        need = "required" if table.required else "optional"
        lines += [f"### `{table.name}` ({need})", "", table.description, ""]
        lines += [
            "| column | type | unit | allowed values | required | description | example |",
            "|---|---|---|---|---|---|---|",
        ]
        for col in table.columns:
            req = "required" if col.required else "optional"
            if col.required and col.nullable:
                req = "required (may be empty)"
            lines.append(
                f"| {col.name} | {col.type_name} | {col.unit} | {col.allowed_text()} | {req} | "
                f"{col.description} | `{col.example}` |"
            )
        lines += ["", f"Other columns: {table.extra_columns}.", ""]
    return "\n".join(lines).rstrip() + "\n"


DICTIONARY_BEGIN = "<!-- BEGIN data dictionary: generated by analysis.schema.update_data_dictionary -->"
DICTIONARY_END = "<!-- END data dictionary -->"


def update_data_dictionary(path: str) -> bool:
    """Rewrite the generated data dictionary between the markers in a Markdown file.

    Returns True when the file changed. ``docs/data-format.md`` is kept in step with this
    module by ``python -c "from analysis.schema import update_data_dictionary; update_data_dictionary('docs/data-format.md')"``.
    """
    from pathlib import Path

    doc = Path(path)
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(DICTIONARY_BEGIN) + len(DICTIONARY_BEGIN), text.index(DICTIONARY_END)
    new = text[:start] + "\n\n" + data_dictionary_markdown() + "\n" + text[end:]
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text

