"""CDISC SDTM in: DM, EX, QS and CM (with their SUPP-- datasets) to format v1.

The domains are read from a folder as ``.xpt`` (SAS transport), ``.sas7bdat`` (both with
pyreadstat), ``.csv`` or ``.parquet`` files named after the domain (``dm.xpt``, ``QS.csv``).

* **DM** gives the patients: ``USUBJID`` (the key), ``SITEID`` (site), ``AGE`` in ``AGEU``
  (years; months are divided by 12), ``SEX`` (CDISC codelist C66731: F, M, U,
  UNDIFFERENTIATED), and ``RFSTDTC``, the reference start date the ``--DY`` variables count
  from.
* **EX** gives the sessions: ``EXTRT`` ketamine or esketamine (other treatments, placebo
  among them, are dropped and logged), ``EXDOSE`` in ``EXDOSU`` (mg or mg/kg), ``EXROUTE``,
  and ``EXSTDY`` or ``EXSTDTC``.
* **QS** gives the assessments (:mod:`analysis.io._sdtm_qs`): ``QSCAT`` names the
  instrument; the score is the total record (bundled total-code map, else a ``QSTEST``
  ending in "Total Score"), or the items summed when there is no total.
* **CM** gives the medications: ``CMDECOD`` (else ``CMTRT``), ``CMDOSE`` in ``CMDOSU``,
  ``CMSTDY``/``CMENDY`` or ``CMSTDTC``/``CMENDTC``.

Study days: SDTM's ``--DY`` has no day 0 (``RFSTDTC`` is day 1 and the day before is day
-1); format v1 counts a difference of dates (the reference day is 0, the day before -1). So
``--DY`` >= 1 becomes ``--DY - 1`` and negative days stay as they are
(:func:`analysis.io._sdtm_files.study_days`). The conversion then moves day 0 to each
patient's index (by default the first ketamine or esketamine session; ``index="RFSTDTC"``
keeps the SDTM reference start).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..problems import DataValidationError, ValidationReport
from ._extract import RowAccount, SourceExtract
from ._sdtm_files import DomainTable, find_domain_files, iso_dates, numbers, read_domain, study_days
from ._sdtm_qs import qs_assessments
from ._sdtm_supp import merge_supp

__all__ = ["extract_sdtm", "read_sdtm", "add_arguments", "run", "SDTM_DOMAINS"]

#: the domains read, and what each becomes
SDTM_DOMAINS = {"dm": "patients", "ex": "sessions", "qs": "assessments", "cm": "medications"}
#: DM columns that identify a person: never copied, listed in the log when present
_IDENTIFYING = ("BRTHDTC", "INVNAM", "DTHDTC")
#: CDISC SEX codelist (C66731) to format v1
_SEX = {"F": "female", "M": "male", "U": "unknown", "UNDIFFERENTIATED": "other"}
#: the index rule that keeps SDTM's own reference start
REFERENCE_INDEX = "RFSTDTC"


def _missing_columns(table: DomainTable, columns: tuple[str, ...], report: ValidationReport) -> bool:
    absent = [c for c in columns if c not in table.frame]
    if absent:
        report.add_table_problem(table.file, f"required column is missing: {', '.join(absent)} "
                                 f"(columns present: {', '.join(table.frame.columns)})", file=table.file,
                                 code="sdtm_missing_column")
    return bool(absent)


def _text(table: DomainTable, column: str) -> pd.Series:
    f = table.frame
    return f[column].astype("string") if column in f else pd.Series(pd.NA, index=f.index, dtype="string")


def _flag_missing(table: DomainTable, column: str, mask: np.ndarray, report: ValidationReport, what: str) -> None:
    report.add_rows(table.file, column, np.flatnonzero(mask), None, f"required value is missing: {what}",
                    code="sdtm_missing")


class _Subjects:
    """USUBJID -> the subject's reference start date, for placing the other domains' records."""

    def __init__(self, dm: DomainTable, report: ValidationReport) -> None:
        self.keys = _text(dm, "USUBJID")
        self.reference = pd.Series(iso_dates(dm, "RFSTDTC", report).to_numpy(), index=self.keys.to_numpy())
        self.reference = self.reference[~self.reference.index.duplicated()]
        self.known = set(self.keys.dropna())

    def place(self, table: DomainTable, report: ValidationReport) -> pd.Series:
        """Each record's subject key; records of subjects not in DM are errors."""
        keys = _text(table, "USUBJID")
        _flag_missing(table, "USUBJID", keys.isna().to_numpy(), report, "USUBJID names the subject")
        unknown = np.flatnonzero(keys.notna().to_numpy() & ~keys.isin(self.known).to_numpy())
        report.add_rows(table.file, "USUBJID", unknown, keys.iloc[unknown], "subject is not in dm",
                        code="sdtm_unknown_subject")
        return keys

    def reference_of(self, keys: pd.Series) -> pd.Series:
        return pd.Series(self.reference.reindex(keys.to_numpy()).to_numpy(), index=keys.index)


def _patients(dm: DomainTable, report: ValidationReport, index: str) -> tuple[pd.DataFrame, np.ndarray]:
    f = dm.frame
    keys = _text(dm, "USUBJID")
    _flag_missing(dm, "USUBJID", keys.isna().to_numpy(), report, "USUBJID names the subject")
    doubled = np.flatnonzero(keys.duplicated(keep="first").to_numpy() & keys.notna().to_numpy())
    report.add_rows(dm.file, "USUBJID", doubled, keys.iloc[doubled], "USUBJID appears more than once in dm",
                    code="sdtm_duplicate_subject")
    out = pd.DataFrame({"source_key": keys, "source_ref": dm.source_refs()})
    if "SITEID" in f:
        out["site"] = _text(dm, "SITEID")
    if "AGE" in f:
        age = numbers(dm, "AGE", report, "an age (a number)")
        unit = _text(dm, "AGEU").str.upper().fillna("YEARS")
        per_year = unit.map({"YEARS": 1.0, "MONTHS": 12.0})
        odd = np.flatnonzero(per_year.isna().to_numpy() & age.notna().to_numpy())
        report.add_rows(dm.file, "AGEU", odd, _text(dm, "AGEU").iloc[odd], "expected YEARS or MONTHS",
                        code="sdtm_age_unit")
        out["age"] = age / per_year.astype(float)
    if "SEX" in f:
        sex = _text(dm, "SEX").str.upper()
        mapped = sex.map(_SEX)
        odd = np.flatnonzero(mapped.isna().to_numpy() & sex.notna().to_numpy())
        report.add_rows(dm.file, "SEX", odd, _text(dm, "SEX").iloc[odd], "expected one of F, M, U, UNDIFFERENTIATED "
                        "(CDISC codelist C66731)", code="sdtm_sex")
        out["sex"] = mapped.astype("string")
    for column in f.columns:
        if column.islower():  # supplemental qualifiers (SUPPDM) merged onto the subject
            out[column] = f[column]
    if index == REFERENCE_INDEX:
        if "RFSTDTC" not in f:
            report.add_table_problem(dm.file, "index='RFSTDTC' needs the RFSTDTC column in dm", file=dm.file,
                                     code="sdtm_missing_column")
        else:
            missing = _text(dm, "RFSTDTC").isna().to_numpy()
            _flag_missing(dm, "RFSTDTC", missing, report, "the index is each subject's RFSTDTC")
        out["index_day"] = 0.0  # SDTM days are counted from RFSTDTC: its day is 0 after conversion
    elif index != "first_session":
        # another DM date (informed consent RFICDTC, first exposure RFXSTDTC ...) as day 0
        if index not in f:
            report.add_table_problem(dm.file, f"index={index!r} is not a column of dm", file=dm.file,
                                     code="sdtm_missing_column")
        else:
            reference = iso_dates(dm, "RFSTDTC", report)
            out["index_day"] = (iso_dates(dm, index, report) - reference).dt.days.astype(float)
    used = keys.notna().to_numpy()
    return out, used


def _sessions(ex: DomainTable, subjects: _Subjects, report: ValidationReport, vocabulary
              ) -> tuple[pd.DataFrame, list[RowAccount], np.ndarray]:
    if _missing_columns(ex, ("USUBJID", "EXTRT"), report):
        return pd.DataFrame(), [], np.zeros(len(ex.frame), dtype=bool)
    keys = subjects.place(ex, report)
    day = study_days(ex, "EXSTDY", "EXSTDTC", subjects.reference_of(keys), report)
    treatment = _text(ex, "EXTRT")
    accounts = []
    occurred = ~(_text(ex, "EXOCCUR").str.upper() == "N").fillna(False).to_numpy()
    if (~occurred).any():
        accounts.append(RowAccount(ex.file, ex.refs[~occurred].tolist(), "dropped", None,
                                   "EXOCCUR is N: the planned dose was not given."))
    mapped = treatment.map(lambda v: vocabulary.lookup("drug", v).value if isinstance(v, str) else None)
    other = occurred & mapped.notna().to_numpy() & ~mapped.isin(["ketamine", "esketamine"]).to_numpy()
    other |= occurred & (treatment.str.upper() == "PLACEBO").fillna(False).to_numpy()
    for value in treatment[other].unique():
        rows = other & (treatment == value).fillna(False).to_numpy()
        accounts.append(RowAccount(ex.file, ex.refs[rows].tolist(), "dropped", None,
                                   f"EXTRT {value!r} is not ketamine or esketamine."))
    take = occurred & ~other
    _flag_missing(ex, "EXTRT", take & treatment.isna().to_numpy(), report, "EXTRT names the treatment")
    no_day = take & day.isna().to_numpy() & _text(ex, "EXSTDY").isna().to_numpy() & _text(ex, "EXSTDTC").isna().to_numpy()
    _flag_missing(ex, "EXSTDY", no_day, report, "EXSTDY or EXSTDTC places the session")
    frame = pd.DataFrame({
        "source_key": keys, "day": day, "drug": treatment, "route": _text(ex, "EXROUTE"),
        "dose": numbers(ex, "EXDOSE", report, "a dose (a number)"), "dose_unit": _text(ex, "EXDOSU"),
        "source_ref": ex.source_refs(),
    })
    for column in ex.frame.columns:
        if column.islower():
            frame[column] = ex.frame[column]
    return frame[take].reset_index(drop=True), accounts, take


def _medications(cm: DomainTable, subjects: _Subjects, report: ValidationReport
                 ) -> tuple[pd.DataFrame, list[RowAccount], np.ndarray]:
    if _missing_columns(cm, ("USUBJID",), report):
        return pd.DataFrame(), [], np.zeros(len(cm.frame), dtype=bool)
    if "CMDECOD" not in cm.frame and "CMTRT" not in cm.frame:
        _missing_columns(cm, ("CMTRT",), report)
        return pd.DataFrame(), [], np.zeros(len(cm.frame), dtype=bool)
    keys = subjects.place(cm, report)
    reference = subjects.reference_of(keys)
    start = study_days(cm, "CMSTDY", "CMSTDTC", reference, report)
    end = study_days(cm, "CMENDY", "CMENDTC", reference, report)
    drug = _text(cm, "CMDECOD").fillna(_text(cm, "CMTRT"))
    accounts = []
    occurred = ~(_text(cm, "CMOCCUR").str.upper() == "N").fillna(False).to_numpy()
    if (~occurred).any():
        accounts.append(RowAccount(cm.file, cm.refs[~occurred].tolist(), "dropped", None,
                                   "CMOCCUR is N: the medication was not taken."))
    _flag_missing(cm, "CMTRT", occurred & drug.isna().to_numpy(), report, "CMDECOD or CMTRT names the drug")
    no_start = occurred & start.isna().to_numpy() & _text(cm, "CMSTDY").isna().to_numpy() \
        & _text(cm, "CMSTDTC").isna().to_numpy()
    _flag_missing(cm, "CMSTDY", no_start, report, "CMSTDY or CMSTDTC gives the first day on the drug")
    frame = pd.DataFrame({"source_key": keys, "drug": drug, "start_day": start, "end_day": end,
                          "dose_mg": _dose_mg(cm, report), "source_ref": cm.source_refs()})
    return frame[occurred].reset_index(drop=True), accounts, occurred


def _dose_mg(cm: DomainTable, report: ValidationReport) -> pd.Series:
    """CMDOSE in mg (CMDOSU mg, g, mcg or ug); another unit with a dose is an error."""
    from ._convert import DOSE_UNITS

    dose = numbers(cm, "CMDOSE", report, "a dose (a number)")
    unit = _text(cm, "CMDOSU").str.lower().str.replace(r"\s+", "", regex=True)
    factor = unit.map(lambda u: DOSE_UNITS[u][1] if isinstance(u, str) and DOSE_UNITS.get(u, ("",))[0] == "dose_mg"
                      else np.nan).astype(float)
    odd = np.flatnonzero(dose.notna().to_numpy() & factor.isna().to_numpy())
    report.add_rows(cm.file, "CMDOSU", odd, _text(cm, "CMDOSU").iloc[odd],
                    "expected a dose unit in mass (mg, g, mcg); format v1 records medication doses in mg",
                    code="sdtm_dose_unit")
    return dose * factor


def _read_domains(folder: Path, report: ValidationReport) -> dict[str, DomainTable]:
    files = find_domain_files(folder, report)
    for required in ("dm", "ex", "qs"):
        if required not in files:
            report.add_table_problem(required, f"required domain is missing: expected {required}.xpt, "
                                     f"{required}.sas7bdat, {required}.csv or {required}.parquet in {folder}",
                                     code="sdtm_missing_domain")
    tables = {}
    for domain, path in files.items():
        if domain in SDTM_DOMAINS or (domain.startswith("supp") and domain[4:] in SDTM_DOMAINS):
            table = read_domain(domain, path, report)
            if table is not None:
                tables[domain] = table
    return tables


def extract_sdtm(folder: str | Path, *, index: str = "first_session", total_codes: Mapping[str, str] | None = None,
                 vocabulary=None) -> SourceExtract:
    """Read an SDTM folder into a :class:`~analysis.io._extract.SourceExtract`.

    Raises :class:`~analysis.problems.DataValidationError` with every problem of the source
    (each naming the file, the line or record, the column and the value).
    """
    from .vocabulary import default_vocabulary

    vocabulary = vocabulary or default_vocabulary()
    folder = Path(folder)
    report = ValidationReport(str(folder))
    if not folder.is_dir():
        report.add_table_problem("(sdtm)", f"not a folder: {folder}; expected a folder of SDTM domain files",
                                 code="missing_folder")
        raise DataValidationError(report)
    tables = _read_domains(folder, report)
    if not all(d in tables for d in ("dm", "ex", "qs")) or _missing_columns(tables["dm"], ("USUBJID",), report):
        raise DataValidationError(report)
    supp_parents = {}
    for domain in SDTM_DOMAINS:
        if f"supp{domain}" in tables and domain in tables:
            supp_parents[domain] = merge_supp(tables[domain], tables[f"supp{domain}"], report)
    dm = tables["dm"]
    subjects = _Subjects(dm, report)
    patients, dm_used = _patients(dm, report, index)
    used = {"dm": dm_used}
    accounts: list[RowAccount] = []
    sessions, ex_accounts, used["ex"] = _sessions(tables["ex"], subjects, report, vocabulary)
    accounts += ex_accounts
    qs = tables["qs"]
    qs_keys = subjects.place(qs, report)
    qs_day = study_days(qs, "QSDY", "QSDTC", subjects.reference_of(qs_keys), report)
    no_day = qs_day.isna().to_numpy() & _text(qs, "QSDY").isna().to_numpy() & _text(qs, "QSDTC").isna().to_numpy() \
        & ~(_text(qs, "QSSTAT").str.upper() == "NOT DONE").fillna(False).to_numpy()
    _flag_missing(qs, "QSDY", no_day, report, "QSDY or QSDTC places the assessment")
    assessments, qs_accounts, used["qs"] = qs_assessments(qs, qs_keys, qs_day, report, total_codes=total_codes,
                                                          registry=vocabulary.registry)
    accounts += qs_accounts
    medications = pd.DataFrame(columns=["source_key", "drug", "start_day", "end_day", "source_ref"])
    if "cm" in tables:
        medications, cm_accounts, used["cm"] = _medications(tables["cm"], subjects, report)
        accounts += cm_accounts
    for domain, parents in supp_parents.items():
        supp = tables[f"supp{domain}"]
        ok = parents >= 0
        parent_used = np.zeros(len(parents), dtype=bool)
        parent_used[ok] = used.get(domain, np.zeros(0, dtype=bool))[parents[ok]]
        if parent_used.any():
            accounts.append(RowAccount(supp.file, supp.refs[parent_used].tolist(), "used", SDTM_DOMAINS[domain],
                                       None))
        if (ok & ~parent_used).any():
            accounts.append(RowAccount(supp.file, supp.refs[ok & ~parent_used].tolist(), "dropped", None,
                                       f"Qualifier of a {tables[domain].file} record that is not used."))
    if not report.ok:
        raise DataValidationError(report)
    identifying = [c for c in _IDENTIFYING if c in dm.frame]
    return SourceExtract("sdtm", patients[dm_used].reset_index(drop=True), sessions, assessments, medications,
                         accounts, identifiers_dropped=identifying)


def read_sdtm(folder: str | Path, *, index: str = "first_session", total_codes: Mapping[str, str] | None = None,
              vocabulary=None, min_age_topcode: int = 90, keep_key_map: str | Path | None = None,
              out: str | Path | None = None, format: str = "csv"):
    """Import a CDISC SDTM folder (DM, EX, QS, CM and their SUPP-- datasets) as format v1.

    Parameters
    ----------
    folder : path
        The folder of domain files (``dm.xpt``, ``ex.xpt``, ``qs.xpt``, optionally ``cm.xpt``
        and ``suppdm.xpt`` ...; ``.sas7bdat``, ``.csv`` and ``.parquet`` too).
    index : str, default "first_session"
        Study day 0 of each patient: ``"first_session"`` (the first ketamine or esketamine
        session), ``"RFSTDTC"`` (SDTM's reference start, the day ``--DY`` counts from) or
        another DM date column (``"RFICDTC"``, informed consent).
    total_codes : mapping of str to str, optional
        ``{QSCAT: QSTESTCD}`` of total-score records, added to the bundled map
        (``analysis/io/sdtm_qs_totals.toml``).
    vocabulary : analysis.io.vocabulary.Vocabulary, optional
        How treatments, routes and instruments are mapped (default the bundled vocabulary).
    min_age_topcode, keep_key_map, out, format
        As for the conversion (:func:`analysis.io._convert.to_dataset`).

    Returns
    -------
    ImportedDataset
        The dataset, with ``import_log`` accounting for every record of every domain file.

    Raises
    ------
    DataValidationError
        With every problem, each naming the file, line (CSV) or record (``.xpt``), column and value.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> from analysis.io.sdtm import read_sdtm
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"USUBJID": ["S-1"], "SITEID": ["01"], "AGE": [40], "SEX": ["F"],
    ...               "RFSTDTC": ["2023-03-01"]}).to_csv(folder / "dm.csv", index=False)
    >>> pd.DataFrame({"USUBJID": ["S-1", "S-1"], "EXTRT": ["KETAMINE"] * 2, "EXDOSE": [0.5, 0.5],
    ...               "EXDOSU": ["mg/kg"] * 2, "EXROUTE": ["INTRAVENOUS"] * 2,
    ...               "EXSTDY": [1, 4]}).to_csv(folder / "ex.csv", index=False)
    >>> pd.DataFrame({"USUBJID": ["S-1", "S-1"], "QSCAT": ["PHQ-9"] * 2, "QSTESTCD": ["PHQ0111"] * 2,
    ...               "QSTEST": ["PHQ-9 Total Score"] * 2, "QSSTRESN": [19, 9],
    ...               "QSDY": [-1, 8]}).to_csv(folder / "qs.csv", index=False)
    >>> ds = read_sdtm(folder)
    >>> ds.sessions["day"].tolist(), ds.assessments["day"].tolist()
    ([0.0, 3.0], [-1.0, 7.0])
    """
    from ._convert import to_dataset

    extract = extract_sdtm(folder, index=index, total_codes=total_codes, vocabulary=vocabulary)
    return to_dataset(extract, index="first_session" if index == "first_session" else "index_day",
                      vocabulary=vocabulary, min_age_topcode=min_age_topcode, keep_key_map=keep_key_map, out=out,
                      format=format, inputs=(str(folder),))


def _total_code(text: str) -> tuple[str, str]:
    cat, sep, code = text.partition("=")
    if not sep or not cat.strip() or not code.strip():
        raise argparse.ArgumentTypeError(f"expected QSCAT=QSTESTCD, got {text!r}")
    return cat.strip(), code.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ketamine-outcomes import sdtm`` (``--out``, ``--format`` and
    ``--keep-key-map`` are added by :func:`analysis.io.cli.add_import_parser`)."""
    parser.add_argument("folder", type=Path, help="folder of SDTM domain files: dm, ex, qs, cm (+ supp--) as .xpt, "
                        ".sas7bdat, .csv or .parquet")
    parser.add_argument("--index", default="first_session",
                        help="study day 0: first_session (default), RFSTDTC, or another DM date column")
    parser.add_argument("--total-code", action="append", type=_total_code, default=[], metavar="QSCAT=QSTESTCD",
                        help="a QS total-score code beyond the bundled map (repeatable)")


def run(args: argparse.Namespace) -> int:
    """Run ``ketamine-outcomes import sdtm``: 0 written, 1 problems in the source, 2 usage."""
    from .cli import run_import

    if not Path(args.folder).is_dir():
        import sys

        print(f"ketamine-outcomes import sdtm: not a folder: {args.folder}", file=sys.stderr)
        return 2
    return run_import(args, lambda: as_import_problems("sdtm", lambda: read_sdtm(
        args.folder, index=args.index, total_codes=dict(args.total_code), out=args.out, format=args.format,
        keep_key_map=args.keep_key_map)))


def as_import_problems(source: str, call):
    """Run ``call``; problems found while extracting (before the conversion) are raised as the
    conversion's :class:`~analysis.io._convert.ImportProblemsError`, which the CLI reports."""
    from ._convert import ImportProblemsError
    from .log import ImportLog

    try:
        return call()
    except ImportProblemsError:
        raise
    except DataValidationError as exc:
        log = ImportLog(source)
        log.n_errors, log.n_warnings = exc.report.n_errors, exc.report.n_warnings
        raise ImportProblemsError(exc.report, log) from exc
