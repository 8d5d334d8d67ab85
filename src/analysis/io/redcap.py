"""A REDCap project: the records export as REDCap writes it, with its data dictionary.

``read_redcap(records, dictionary=..., mapping=...)`` reads the raw records export (CSV:
coded values, dates as ``YYYY-MM-DD``), with

* ``redcap_event_name`` (longitudinal projects), ``redcap_repeat_instrument`` and
  ``redcap_repeat_instance`` (repeating forms): the mapping names the form (``form =
  "infusion"``) and events (``event = ["induction_arm_1"]``) that hold each table; a row of a
  repeating form belongs to that form, a row without a repeat instrument to the project's
  non-repeating forms of its event, and a row whose fields for the table are all empty is
  not one of its rows (logged as such);
* coded choices (radio, dropdown, yes/no, true/false) decoded through the dictionary's
  "Choices, Calculations, OR Slider Labels" (``1, IV infusion | 2, IM injection``) where a
  field gives a text value (route, drug, sex, site ...); score, item, dose and age fields keep
  their numeric codes (questionnaire items are coded by their points); an export of labels
  rather than codes is read too;
* checkbox fields, exported as ``field___1``, ``field___2`` ... (0/1): a checkbox mapped as
  the medications' ``drug`` gives one medication row per box ticked; elsewhere the one ticked
  box's label (several ticked is an error);
* fields the dictionary marks as identifiers ("Identifier?" = y), and fields named like one,
  dropped and logged by name unless the mapping uses them (dates become study days).

Totals are computed from items when only items exist (``items = { "PHQ-9" = [...] }``),
with the instrument's rule for missing items (:mod:`analysis.io.totals`). The offline export
is the tested path; an API export with PyCap gives the same CSV (``Project.export_records(
format_type="csv", raw_or_label="raw")``).

Examples
--------
>>> import tempfile, pathlib
>>> from analysis.io import read_redcap
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "records.csv").write_text(
...     "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,inf_date,inf_route,phq9_total\\n"
...     "1,induction_arm_1,infusion,1,2024-03-01,1,20\\n1,induction_arm_1,infusion,2,2024-03-04,1,12\\n")
>>> _ = (folder / "dictionary.csv").write_text(
...     '"Variable / Field Name","Form Name","Field Type","Choices, Calculations, OR Slider Labels","Identifier?"\\n'
...     'record_id,infusion,text,,\\ninf_date,infusion,text,,\\ninf_route,infusion,radio,"1, IV infusion | 2, IM injection",\\n'
...     'phq9_total,infusion,calc,"sum([phq9_1],[phq9_2])",\\n')
>>> _ = (folder / "map.toml").write_text('''
... [source]
... key = "record_id"
... [sessions]
... form = "infusion"
... date = "inf_date"
... route = "inf_route"
... [assessments]
... form = "infusion"
... date = "inf_date"
... wide = { "PHQ-9" = "phq9_total" }
... ''')
>>> ds = read_redcap(folder / "records.csv", dictionary=folder / "dictionary.csv", mapping=folder / "map.toml")
>>> ds.sessions[["patient_id", "day", "route"]].values.tolist()
[['1', 0.0, 'iv'], ['1', 3.0, 'iv']]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..problems import ValidationReport
from ._convert import ImportedDataset, ImportProblemsError
from ._extract import SourceExtract
from ._fields import REF, build_tables, identifying_columns, source_problem
from .log import ImportLog
from .mapped import _used_columns, convert_with_mapping, read_source_file
from .mapping import Mapping, MappingError, read_mapping

__all__ = ["read_redcap", "DataDictionary", "read_dictionary", "parse_choices", "add_arguments", "run"]

_REDCAP_COLUMNS = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance", "redcap_data_access_group")
_CODED = {"radio", "dropdown", "checkbox", "yesno", "truefalse"}
_FIXED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
# fields whose values are numbers: their choices' codes are kept, not their labels
_NUMERIC_TARGETS = {"score", "dose", "day", "age", "birth_year", "start_day", "end_day"}
_DICTIONARY_HEADERS = {
    "field": "variable / field name", "form": "form name", "type": "field type",
    "choices": "choices, calculations, or slider labels", "identifier": "identifier?",
}


def parse_choices(text: str) -> dict[str, str]:
    """REDCap's choices text (``1, IV | 2, IM``) as code -> label.

    Examples
    --------
    >>> from analysis.io.redcap import parse_choices
    >>> parse_choices("1, IV infusion | 2, IM, deep | -1, Unknown")
    {'1': 'IV infusion', '2': 'IM, deep', '-1': 'Unknown'}
    """
    out = {}
    for part in str(text).split("|"):
        code, sep, label = part.partition(",")
        if sep and code.strip():
            out[code.strip()] = label.strip()
    return out


def checkbox_column(field: str, code: str) -> str:
    """The export column of one checkbox choice (REDCap writes ``-`` in a code as ``_``, lower case)."""
    return f"{field}___{code.replace('-', '_').lower()}"


@dataclass(frozen=True)
class DataDictionary:
    """The fields of a REDCap project: form, type, choices and the identifier flag of each."""

    fields: pd.DataFrame  # index: field name; columns form, type, choices (dict), identifier (bool)
    path: str

    def field_type(self, name: str) -> str | None:
        return str(self.fields.at[name, "type"]) if name in self.fields.index else None

    def choices(self, name: str) -> dict[str, str]:
        if name not in self.fields.index:
            return {}
        kind = self.field_type(name)
        return _FIXED_CHOICES.get(kind, self.fields.at[name, "choices"])

    def identifiers(self) -> list[str]:
        return list(self.fields.index[self.fields["identifier"]])


def read_dictionary(path: str | Path) -> DataDictionary:
    """Read a REDCap data dictionary (CSV as REDCap's "Download the Data Dictionary" writes it)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise MappingError(f"{path}: cannot read the REDCap data dictionary: {exc}") from exc
    by_lower = {str(c).strip().lower(): c for c in frame.columns}
    missing = [h for key, h in _DICTIONARY_HEADERS.items() if h not in by_lower and key != "identifier"]
    if missing:
        raise MappingError(f"{path}: not a REDCap data dictionary: column(s) {missing} missing "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    col = {key: by_lower.get(h) for key, h in _DICTIONARY_HEADERS.items()}
    fields = pd.DataFrame({
        "form": frame[col["form"]].str.strip().to_numpy(),
        "type": frame[col["type"]].str.strip().str.lower().to_numpy(),
        "choices": [parse_choices(c) for c in frame[col["choices"]]],
        "identifier": (frame[col["identifier"]].str.strip().str.lower() == "y").to_numpy()
        if col["identifier"] else np.zeros(len(frame), dtype=bool),
    }, index=frame[col["field"]].str.strip())
    return DataDictionary(fields, str(path))


def _targets(mapping: Mapping) -> dict[str, str]:
    """Source field -> the format-v1 field it fills (for choosing codes or labels)."""
    out = {}
    for _, tm in mapping.sections():
        for key, value in tm.model_dump().items():
            if key in ("file", "form", "event", "when", "require") or key.endswith("_value"):
                continue
            if isinstance(value, str):
                out.setdefault(value, "day" if key.endswith(("date", "day")) else key)
            elif key == "wide":
                out.update({v: "score" for v in value.values()})
            elif key == "items":
                out.update({c: "score" for cols in value.values() for c in cols})
            elif key == "keep":
                out.update({v: k for k, v in value.items()})
    return out


def _decode(records: pd.DataFrame, dictionary: DataDictionary, mapping: Mapping, file: str,
            report: ValidationReport) -> pd.DataFrame:
    """Coded choices to labels (text fields) and checkboxes to one column per field."""
    out = records.copy()
    targets = _targets(mapping)
    for field, target in targets.items():
        kind = dictionary.field_type(field)
        if kind not in _CODED:
            continue
        choices = dictionary.choices(field)
        if kind == "checkbox":
            boxes = {code: checkbox_column(field, code) for code in choices}
            absent = [c for c in boxes.values() if c not in out.columns]
            if absent:
                raise MappingError(f"{file}: checkbox field {field!r} of the data dictionary has no export column(s) "
                                   f"{absent}")
            ticked = pd.DataFrame({code: out[c].astype("string").str.strip() == "1" for code, c in boxes.items()})
            labels = [" | ".join(choices[c] for c in ticked.columns[row]) or None
                      for row in ticked.fillna(False).to_numpy(dtype=bool)]
            out[field] = pd.Series(labels, index=out.index, dtype="string")
            continue
        if field not in out.columns:
            continue
        values = out[field].astype("string").str.strip()
        # a raw export holds codes, a label export ("raw_or_label=label") the labels: both are read
        code_of = {label: code for code, label in choices.items()}
        is_code = values.isin(list(choices)).to_numpy(dtype=bool, na_value=False)
        is_label = values.isin(list(code_of)).to_numpy(dtype=bool, na_value=False) & ~is_code
        bad = np.flatnonzero(values.notna().to_numpy() & (values != "").to_numpy(dtype=bool, na_value=False)
                             & ~is_code & ~is_label)
        source_problem(report, file, out, bad, field, f"not a code of this {kind} field; expected one of the data "
                       f"dictionary's codes {', '.join(choices)} ({dictionary.path})", code="redcap_code")
        if target in _NUMERIC_TARGETS:
            out[field] = values.where(~is_label, values.map(code_of)).astype("string")
        else:
            out[field] = values.where(is_label, values.map(choices)).astype("string")
    return out


def _checkbox_medications(frame: pd.DataFrame, field: str) -> pd.DataFrame:
    """One row per ticked box of a checkbox mapped as the medications' drug."""
    labels = frame[field].astype("string").str.split(r" \| ", regex=True)
    exploded = frame.assign(**{field: labels}).explode(field)
    return exploded.reset_index(drop=True)


def _preselect(records: pd.DataFrame, mapping: Mapping, dictionary: DataDictionary, file: str):
    """Per table, the rows of its form and events that fill any of its fields, and why the others are not its rows."""
    event = records.get("redcap_event_name", pd.Series(pd.NA, index=records.index)).astype("string")
    repeat = records.get("redcap_repeat_instrument", pd.Series(pd.NA, index=records.index)).astype("string").fillna("")
    targets = _targets(mapping)
    out = {}
    for section, (table, tm) in enumerate(mapping.sections()):
        why = []
        keep = np.ones(len(records), dtype=bool)
        if tm.event:
            ok = event.isin(tm.event).to_numpy(dtype=bool, na_value=False)
            why.append((~ok, f"not a {table} row: redcap_event_name is not one of {tm.event}"))
            keep &= ok
        if tm.form is not None:
            repeating = repeat.eq(tm.form).any()
            if repeating:
                ok = repeat.eq(tm.form).to_numpy(dtype=bool)
                why.append((keep & ~ok, f"not a {table} row: redcap_repeat_instrument is not {tm.form!r}"))
            else:  # a non-repeating form: the rows without a repeat instrument
                ok = repeat.eq("").to_numpy(dtype=bool)
                why.append((keep & ~ok, f"not a {table} row: a repeating form's row ({tm.form!r} is not repeating)"))
            keep &= ok
        fields = [f for f, _ in targets.items() if f in records.columns and f != mapping.key_of(tm)
                  and _belongs(f, tm, dictionary)]
        if fields:
            filled = records[fields].astype("string").apply(lambda s: s.str.strip().ne("") & s.notna()).any(axis=1)
            ok = filled.to_numpy(dtype=bool)
            why.append((keep & ~ok, f"not a {table} row: its fields ({', '.join(fields)}) are all empty here"))
            keep &= ok
        out[(table, section)] = (keep, why)
    return out


def _belongs(field: str, tm, dictionary: DataDictionary) -> bool:
    """Whether ``field`` is one of the table's own mapped fields."""
    data = tm.model_dump()
    mine = set()
    for key, value in data.items():
        if key in ("file", "form", "event", "when", "require", "key") or key.endswith("_value"):
            continue
        if isinstance(value, str):
            mine.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                mine.update(v if isinstance(v, list) else [v])
    return field in mine


def extract_redcap(records: str | Path, dictionary: DataDictionary, mapping: Mapping,
                   report: ValidationReport) -> SourceExtract:
    """Read a records export and extract the four tables as the mapping says."""
    records = Path(records)
    frame = read_source_file(records, report)
    if frame is None or not report.ok:
        raise ImportProblemsError(report, ImportLog("redcap", inputs=[str(records)]))
    file = records.name
    known = set(dictionary.fields.index) | set(_REDCAP_COLUMNS)
    used = _used_columns(mapping)
    for field in sorted(used):
        base = re.sub(r"___\w+$", "", field)
        if field not in known and base not in known:
            raise MappingError(f"{mapping.path}: field {field!r} is not in the data dictionary ({dictionary.path})")
    forms = set(dictionary.fields["form"])
    for table, tm in mapping.sections():
        if tm.form is not None and tm.form not in forms:
            raise MappingError(f"{mapping.path}: key '{table}.form': value {tm.form!r}: not a form of the data "
                               f"dictionary ({dictionary.path}; forms: {', '.join(sorted(forms))})")
    frame = _decode(frame, dictionary, mapping, file, report)
    if mapping.medications is not None and dictionary.field_type(mapping.medications.drug or "") == "checkbox":
        drug = mapping.medications.drug
        meds = _checkbox_medications(frame, drug)
        sources_meds = [(file, meds)]
    else:
        sources_meds = [(file, frame)]
    export_columns = [c for c in frame.columns if c != REF]
    identifying = set(dictionary.identifiers()) | set(identifying_columns(export_columns))
    dropped = sorted(c for c in identifying if c in export_columns and c not in used)
    sections = mapping.sections()
    sources = {(t, i): (sources_meds if t == "medications" else [(file, frame)]) for i, (t, _) in enumerate(sections)}
    preselect = _preselect(frame, mapping, dictionary, file)
    if sources_meds[0][1] is not frame:
        meds_rows = _preselect(sources_meds[0][1], mapping, dictionary, file)
        preselect.update({k: v for k, v in meds_rows.items() if k[0] == "medications"})
    tables, accounts = build_tables(sources, mapping, report, preselect=preselect)
    return SourceExtract("redcap", tables["patients"], tables["sessions"], tables["assessments"],
                         tables["medications"], accounts, identifiers_dropped=dropped)


def read_redcap(records: str | Path, *, dictionary: str | Path | DataDictionary, mapping: str | Path | Mapping,
                out: str | Path | None = None, format: str = "csv", keep_key_map: str | Path | None = None,
                **options) -> ImportedDataset:
    """Import a REDCap records export with its data dictionary and a mapping file.

    Parameters
    ----------
    records : path
        The records export (CSV, raw codes), as REDCap writes it.
    dictionary : path or DataDictionary
        The project's data dictionary (CSV).
    mapping : path or Mapping
        The mapping file (``docs/import.md``): ``form``/``event`` say where each table's rows are.
    out, format, keep_key_map, **options
        As for :func:`analysis.io._convert.to_dataset`.

    Returns
    -------
    ImportedDataset
        With ``import_log``; :class:`~analysis.io.ImportProblemsError` on errors.
    """
    mapping = mapping if isinstance(mapping, Mapping) else read_mapping(mapping)
    mapping.check_where("redcap")
    dictionary = dictionary if isinstance(dictionary, DataDictionary) else read_dictionary(dictionary)
    report = ValidationReport("redcap import")
    extract = extract_redcap(records, dictionary, mapping, report)
    return convert_with_mapping(extract, mapping, report, inputs=(str(records), dictionary.path), out=out,
                                format=format,
                                keep_key_map=keep_key_map, **options)


# --- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``ketamine-outcomes import redcap``."""
    parser.add_argument("records", type=Path, help="the REDCap records export (CSV, raw codes)")
    parser.add_argument("--dictionary", type=Path, required=True, help="the project's data dictionary (CSV)")
    parser.add_argument("--mapping", type=Path, required=True, help="the mapping file (TOML, docs/import.md)")


def run(args: argparse.Namespace) -> int:
    """Run ``ketamine-outcomes import redcap``; the exit code."""
    from .cli import run_import

    return run_import(args, lambda: read_redcap(args.records, dictionary=args.dictionary, mapping=args.mapping,
                                                 out=args.out, format=args.format, keep_key_map=args.keep_key_map,
                                                 allow_free_text=tuple(args.allow_free_text)),
                      inputs=(args.records, args.dictionary, args.mapping))
