"""OMOP CDM v5.4 in: person, drug_exposure, measurement and observation to format v1.

Concepts are resolved through the database's own ``concept`` and ``concept_ancestor``
tables, by vocabulary and code, never by concept id (ids differ between vocabulary
releases and sites):

* **Sessions** are the ``drug_exposure`` rows whose ``drug_concept_id`` is an RxNorm
  ingredient ketamine (code 6130) or esketamine, or a descendant of one (every clinical or
  branded drug that contains it). Dose is ``quantity`` in ``dose_unit_source_value`` (mg or
  mg/kg), the day is ``drug_exposure_start_date``, the route ``route_concept_id`` resolved to
  its SNOMED code (47625008 intravenous, 78421000 intramuscular, 46713006 nasal, 26643006
  oral, 37839007 sublingual) or, when it is 0, ``route_source_value``.
* **Medications** are the ``drug_exposure`` rows of the other drugs the vocabulary knows
  (:mod:`analysis.io.vocabulary`: benzodiazepines, sirolimus 35302, lamotrigine 28439, ...):
  their RxNorm ingredients by code (or, for an entry without a code, by ingredient name) and
  those ingredients' descendants. ``drug_exposure_start_date`` to ``drug_exposure_end_date``
  (empty: ongoing), dose ``quantity`` in mg.
* **Assessments** are the ``measurement`` and ``observation`` rows whose concept is a LOINC
  code of an instrument in the vocabulary (PHQ-9 total 44261-6, GAD-7 total 70274-6; add
  others as ``[vocabulary.instrument]`` codes), score ``value_as_number``.
* **Patients** are the ``person`` rows: ``person_id`` (the key), ``gender_concept_id``
  resolved to its Gender code (F, M, O; anything else unknown), ``care_site_id`` (its
  ``care_site_name`` when the table has one) as the site, and the age at the index computed
  from ``year_of_birth`` (year of the first ketamine or esketamine session minus the year of
  birth), top-coded at 90 by the conversion. Month and day of birth, ``birth_datetime`` and
  ``person_source_value`` are never read.

Every other row of the four tables is accounted for as dropped, with its reason, by primary
key (``drug_exposure_id=845``). Rows are streamed in chunks (:mod:`analysis.io._omop_sql`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from ..problems import DataValidationError, ValidationReport
from ._extract import RowAccount, SourceExtract
from ._omop_sql import Database, connect

__all__ = ["extract_omop", "read_omop", "add_arguments", "run", "OMOP_TABLES"]

#: the tables read, and what each gives
OMOP_TABLES = {"person": "patients", "drug_exposure": "sessions and medications", "measurement": "assessments",
               "observation": "assessments"}
#: person columns that identify someone: never read, listed in the log when present
_IDENTIFYING = ("month_of_birth", "day_of_birth", "birth_datetime", "person_source_value")
#: OMOP Gender vocabulary codes -> format v1
_GENDER = {"F": "female", "M": "male", "O": "other", "U": "unknown"}
_SESSION_DRUGS = ("ketamine", "esketamine")


class _Drugs:
    """drug_concept_id -> the drug value it stands for, from the vocabulary's RxNorm entries."""

    def __init__(self, db: Database, vocabulary) -> None:
        codes, names = [], []
        for entry in vocabulary.entries("drug"):
            codes += [c.partition(":")[2] for c in entry.codes if c.lower().startswith("rxnorm:")]
            names += [entry.value, *entry.names]
        ingredients = db.concepts_by_code("RxNorm", codes, concept_class="Ingredient", names=names)
        self.value_of_ingredient: dict[int, str] = {}
        self.raw_of_ingredient: dict[int, str] = {}
        for row in ingredients.itertuples(index=False):
            code = f"RxNorm:{row.concept_code}"
            found = vocabulary.lookup("drug", code)
            raw = code if found.how == "exact" else str(row.concept_name)
            found = found if found.how == "exact" else vocabulary.lookup("drug", raw)
            if found.value is not None:
                self.value_of_ingredient[int(row.concept_id)] = found.value
                self.raw_of_ingredient[int(row.concept_id)] = raw
        pairs = db.descendants(list(self.value_of_ingredient))
        # a product with two ingredients of interest (rare) counts as a session if either is ketamine
        pairs["is_session"] = pairs["ancestor_concept_id"].map(self.value_of_ingredient).isin(_SESSION_DRUGS)
        pairs = pairs.sort_values("is_session", ascending=False, kind="stable").drop_duplicates("descendant_concept_id")
        self.ingredient = pd.Series(pairs["ancestor_concept_id"].to_numpy(), index=pairs["descendant_concept_id"].to_numpy())
        self.found = sorted(set(self.value_of_ingredient.values()))

    def classify(self, concept_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(raw drug value for the conversion, format-v1 drug) per row; missing when not known."""
        ingredient = pd.Series(self.ingredient.reindex(concept_ids.to_numpy()).to_numpy(), index=concept_ids.index)
        return ingredient.map(self.raw_of_ingredient), ingredient.map(self.value_of_ingredient)


def _refs(table: str, key: str, ids: pd.Series) -> list[str]:
    return [f"{key}={int(i)}" for i in ids]


def _source_refs(table: str, key: str, ids: pd.Series) -> pd.Series:
    return pd.Series([f"{table}:{key}={int(i)}" for i in ids], index=ids.index, dtype="string")


def _dates(values: pd.Series) -> pd.Series:
    # no cast to nanoseconds: a date after 2262 must be read (and reported), not overflow
    return pd.to_datetime(values, errors="coerce")


def _drug_exposures(db: Database, drugs: _Drugs, report: ValidationReport, chunk_rows: int
                    ) -> tuple[pd.DataFrame, pd.DataFrame, list[RowAccount]]:
    sql = ("SELECT drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date, drug_exposure_end_date, "
           "quantity, dose_unit_source_value, route_concept_id, route_source_value "
           f"FROM {db.name('drug_exposure')}")
    sessions, medications, not_known = [], [], []
    for chunk in db.stream(sql, chunk_rows=chunk_rows):
        raw, value = drugs.classify(chunk["drug_concept_id"].fillna(0).astype("int64"))
        not_known += _refs("drug_exposure", "drug_exposure_id", chunk.loc[value.isna(), "drug_exposure_id"])
        is_session = value.isin(_SESSION_DRUGS).to_numpy()
        keep = chunk.assign(drug=raw)
        sessions.append(keep[is_session])
        medications.append(keep[value.notna().to_numpy() & ~is_session])
    accounts = []
    if not_known:
        accounts.append(RowAccount("drug_exposure", not_known, "dropped", None,
                                   "drug_concept_id is not ketamine, esketamine or a drug the vocabulary knows "
                                   f"(RxNorm ingredients found: {', '.join(drugs.found) or 'none'}) nor a descendant "
                                   "of one."))
    ses = pd.concat(sessions, ignore_index=True) if sessions else pd.DataFrame()
    med = pd.concat(medications, ignore_index=True) if medications else pd.DataFrame()
    routes = _routes(db, ses)
    session_frame = pd.DataFrame({
        "source_key": ses["person_id"].astype("int64").astype("string") if len(ses) else pd.Series(dtype="string"),
        "date": _dates(ses.get("drug_exposure_start_date", pd.Series(dtype=object))),
        "drug": ses.get("drug", pd.Series(dtype="string")).astype("string"),
        "route": routes,
        "dose": pd.to_numeric(ses.get("quantity", pd.Series(dtype=float)), errors="coerce").astype(float),
        "dose_unit": ses.get("dose_unit_source_value", pd.Series(dtype="string")).astype("string"),
        "source_ref": _source_refs("drug_exposure", "drug_exposure_id", ses.get("drug_exposure_id", pd.Series(dtype=int))),
        "source_col_day": "drug_exposure_start_date", "source_col_route": "route_concept_id",
        "source_col_dose": "quantity", "source_col_dose_unit": "dose_unit_source_value",
        "source_col_drug": "drug_concept_id",
    })
    dose = pd.to_numeric(med.get("quantity", pd.Series(dtype=float)), errors="coerce").astype(float)
    unit = med.get("dose_unit_source_value", pd.Series(dtype="string")).astype("string").str.strip().str.lower()
    odd = np.flatnonzero(dose.notna().to_numpy() & ~unit.isin(["mg", "milligram", "milligrams"]).to_numpy())
    for pos in odd:  # every one counted; the report keeps the first 20
        report.add_table_problem("drug_exposure", "expected a dose unit of mg for a medication's quantity "
                                 "(format v1 records medication doses in mg)", column="dose_unit_source_value",
                                 value=unit.iloc[pos], file=f"drug_exposure drug_exposure_id={int(med['drug_exposure_id'].iloc[pos])}",
                                 code="omop_dose_unit")
    med_frame = pd.DataFrame({
        "source_key": med["person_id"].astype("int64").astype("string") if len(med) else pd.Series(dtype="string"),
        "drug": med.get("drug", pd.Series(dtype="string")).astype("string"),
        "start_date": _dates(med.get("drug_exposure_start_date", pd.Series(dtype=object))),
        "end_date": _dates(med.get("drug_exposure_end_date", pd.Series(dtype=object))),
        "dose_mg": dose,
        "source_ref": _source_refs("drug_exposure", "drug_exposure_id", med.get("drug_exposure_id", pd.Series(dtype=int))),
        "source_col_start_day": "drug_exposure_start_date", "source_col_end_day": "drug_exposure_end_date",
        "source_col_drug": "drug_concept_id", "source_col_dose_mg": "quantity",
    })
    return session_frame, med_frame, accounts


def _routes(db: Database, ses: pd.DataFrame) -> pd.Series:
    """Route per session: ``SNOMED:<code>`` of ``route_concept_id``, its name for another
    vocabulary, ``route_source_value`` when the concept is 0 or empty."""
    if not len(ses):
        return pd.Series(dtype="string")
    ids = pd.to_numeric(ses["route_concept_id"], errors="coerce").fillna(0).astype("int64")
    concepts = db.concepts_by_id(sorted(set(ids) - {0}))
    written = {int(r.concept_id): (f"SNOMED:{r.concept_code}" if r.vocabulary_id == "SNOMED" else str(r.concept_name))
               for r in concepts.itertuples(index=False)}
    route = ids.map(written).astype("string")
    return route.fillna(ses["route_source_value"].astype("string")).reset_index(drop=True)


def _scores(db: Database, table: str, vocabulary, chunk_rows: int) -> tuple[pd.DataFrame, list[RowAccount]]:
    """Assessments from ``measurement`` or ``observation`` rows of the vocabulary's LOINC codes."""
    key, concept, date = f"{table}_id", f"{table}_concept_id", f"{table}_date"
    codes = [c.partition(":")[2] for e in vocabulary.entries("instrument") for c in e.codes
             if c.lower().startswith("loinc:")]
    found = db.concepts_by_code("LOINC", codes)
    instrument = {int(r.concept_id): f"LOINC:{r.concept_code}" for r in found.itertuples(index=False)}
    sql = f"SELECT {key}, person_id, {concept}, {date}, value_as_number FROM {db.name(table)}"
    kept, not_score, no_value = [], [], []
    for chunk in db.stream(sql, chunk_rows=chunk_rows):
        which = chunk[concept].fillna(0).astype("int64").map(instrument)
        not_score += _refs(table, key, chunk.loc[which.isna(), key])
        empty = which.notna() & chunk["value_as_number"].isna()
        no_value += _refs(table, key, chunk.loc[empty, key])
        take = which.notna() & ~empty
        kept.append(chunk[take].assign(instrument=which[take]))
    rows = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=[key, "person_id", date])
    accounts = []
    if not_score:
        accounts.append(RowAccount(table, not_score, "dropped", None,
                                   f"{concept} is not a mood-score total the vocabulary knows by LOINC code "
                                   f"({', '.join(sorted(instrument.values())) or 'none found in concept'})."))
    if no_value:
        accounts.append(RowAccount(table, no_value, "dropped", None, "value_as_number is empty: no score recorded."))
    frame = pd.DataFrame({
        "source_key": rows["person_id"].astype("int64").astype("string") if len(rows) else pd.Series(dtype="string"),
        "date": _dates(rows[date]),
        "instrument": rows.get("instrument", pd.Series(dtype="string")).astype("string"),
        "score": pd.to_numeric(rows.get("value_as_number", pd.Series(dtype=float)), errors="coerce").astype(float),
        "source_ref": _source_refs(table, key, rows[key]),
        "source_col_day": date, "source_col_score": "value_as_number", "source_col_instrument": concept,
    })
    return frame, accounts


def _patients(db: Database, sessions: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    person = db.query(f"SELECT person_id, gender_concept_id, year_of_birth, care_site_id FROM {db.name('person')}")
    key = person["person_id"].astype("int64")
    refs = _source_refs("person", "person_id", key)
    genders = db.concepts_by_id(sorted(set(pd.to_numeric(person["gender_concept_id"], errors="coerce").dropna()
                                           .astype("int64")) - {0}))
    code_of = {int(r.concept_id): str(r.concept_code).upper() for r in genders.itertuples(index=False)
               if r.vocabulary_id == "Gender"}
    gender_id = pd.to_numeric(person["gender_concept_id"], errors="coerce").fillna(0).astype("int64")
    sex = gender_id.map(code_of).map(_GENDER).astype("string")
    odd = np.flatnonzero(sex.isna().to_numpy() & (gender_id != 0).to_numpy())
    for pos in odd:  # every one counted; the report keeps the first 20
        report.add_table_problem("person", "expected a concept of the OMOP Gender vocabulary (F, M, O, U) or 0",
                                 column="gender_concept_id", value=int(gender_id.iloc[pos]),
                                 file=f"person person_id={int(key.iloc[pos])}", code="omop_gender")
    sex = sex.fillna("unknown")
    site = pd.to_numeric(person["care_site_id"], errors="coerce").astype("Int64").astype("string")
    if db.has("care_site") and "care_site_name" in db.columns("care_site"):
        names = db.query(f"SELECT care_site_id, care_site_name FROM {db.name('care_site')}")
        name_of = dict(zip(pd.to_numeric(names["care_site_id"]).astype("int64").astype(str), names["care_site_name"]))
        site = site.map(lambda s: name_of.get(s, s) if isinstance(s, str) else s).astype("string")
    first = sessions.groupby("source_key")["date"].min() if len(sessions) else pd.Series(dtype="datetime64[ns]")
    index_year = key.astype("string").map(first.dt.year).astype(float)
    age = index_year - pd.to_numeric(person["year_of_birth"], errors="coerce").astype(float)
    return pd.DataFrame({"source_key": key.astype("string"), "site": site, "sex": sex, "age": age,
                         "source_ref": refs, "source_col_age": "year_of_birth", "source_col_sex": "gender_concept_id",
                         "source_col_site": "care_site_id"})


def extract_omop(url: str, *, schema: str | None = None, vocabulary=None, chunk_rows: int | None = None
                 ) -> SourceExtract:
    """Read an OMOP CDM v5.4 database into a :class:`~analysis.io._extract.SourceExtract`.

    Raises :class:`~analysis.problems.DataValidationError` when a table is missing or a value
    cannot be read (each problem names the table, the primary key, the column and the value).
    """
    from ._omop_sql import CHUNK_ROWS
    from .vocabulary import default_vocabulary

    vocabulary = vocabulary or default_vocabulary()
    chunk_rows = chunk_rows or CHUNK_ROWS
    report = ValidationReport(str(url))
    engine = connect(url)
    try:
        db = Database(engine, schema)
        needed = ["person", "drug_exposure", "concept", "concept_ancestor"]
        missing = [t for t in needed if not db.has(t)]
        if missing:
            report.add_table_problem("(omop)", f"required table(s) missing: {', '.join(missing)} "
                                     f"(schema {schema or 'default'}; tables present: "
                                     f"{', '.join(sorted(db.tables())) or 'none'})", code="omop_missing_table")
            raise DataValidationError(report)
        drugs = _Drugs(db, vocabulary)
        sessions, medications, accounts = _drug_exposures(db, drugs, report, chunk_rows)
        scores = []
        for table in ("measurement", "observation"):
            if db.has(table):
                frame, acc = _scores(db, table, vocabulary, chunk_rows)
                scores.append(frame)
                accounts += acc
        patients = _patients(db, sessions, report)
        identifying = [c for c in _IDENTIFYING if c in db.columns("person")]
    finally:
        engine.dispose()
    if not report.ok:
        raise DataValidationError(report)
    assessments = pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(
        columns=["source_key", "date", "instrument", "score", "source_ref"])
    return SourceExtract("omop", patients, sessions, assessments, medications, accounts,
                         identifiers_dropped=identifying)


def read_omop(url: str, *, schema: str | None = None, index: str = "first_session", vocabulary=None,
              min_age_topcode: int = 90, keep_key_map: str | Path | None = None, out: str | Path | None = None,
              format: str = "csv", chunk_rows: int | None = None):
    """Import an OMOP CDM v5.4 database as format v1.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL: ``duckdb:///file.duckdb``, ``postgresql://user@host/db``,
        ``sqlite:///file.db``.
    schema : str, optional
        The schema holding the CDM tables (``cdm``); default the connection's default.
    index : {"first_session"}
        Study day 0: each patient's first ketamine or esketamine session (the age is the
        age in the year of that session).
    vocabulary : analysis.io.vocabulary.Vocabulary, optional
        Which drugs and instruments to look for, by RxNorm and LOINC code (default bundled).
    min_age_topcode, keep_key_map, out, format
        As for the conversion (:func:`analysis.io._convert.to_dataset`).
    chunk_rows : int, optional
        Rows fetched per round trip (default :data:`analysis.io._omop_sql.CHUNK_ROWS`).

    Returns
    -------
    ImportedDataset
        The dataset, with ``import_log`` accounting for every row of person, drug_exposure,
        measurement and observation by primary key.

    Examples
    --------
    >>> import sqlite3, tempfile
    >>> from pathlib import Path
    >>> from analysis.io.omop import read_omop
    >>> path = Path(tempfile.mkdtemp()) / "cdm.db"
    >>> con = sqlite3.connect(path)
    >>> _ = con.executescript('''
    ... CREATE TABLE concept (concept_id INT, concept_name TEXT, domain_id TEXT, vocabulary_id TEXT,
    ...   concept_class_id TEXT, standard_concept TEXT, concept_code TEXT);
    ... CREATE TABLE concept_ancestor (ancestor_concept_id INT, descendant_concept_id INT);
    ... CREATE TABLE person (person_id INT, gender_concept_id INT, year_of_birth INT, care_site_id INT);
    ... CREATE TABLE drug_exposure (drug_exposure_id INT, person_id INT, drug_concept_id INT,
    ...   drug_exposure_start_date DATE, drug_exposure_end_date DATE, quantity REAL,
    ...   dose_unit_source_value TEXT, route_concept_id INT, route_source_value TEXT);
    ... CREATE TABLE measurement (measurement_id INT, person_id INT, measurement_concept_id INT,
    ...   measurement_date DATE, value_as_number REAL);
    ... INSERT INTO concept VALUES (1, 'ketamine', 'Drug', 'RxNorm', 'Ingredient', 'S', '6130'),
    ...   (2, 'Intravenous route', 'Route', 'SNOMED', 'Qualifier Value', 'S', '47625008'),
    ...   (3, 'PHQ-9 total score', 'Measurement', 'LOINC', 'Clinical Observation', 'S', '44261-6'),
    ...   (4, 'FEMALE', 'Gender', 'Gender', 'Gender', 'S', 'F');
    ... INSERT INTO person VALUES (7, 4, 1980, NULL);
    ... INSERT INTO drug_exposure VALUES (10, 7, 1, '2023-03-01', '2023-03-01', 0.5, 'mg/kg', 2, 'IV'),
    ...   (11, 7, 1, '2023-03-04', '2023-03-04', 0.5, 'mg/kg', 2, 'IV');
    ... INSERT INTO measurement VALUES (20, 7, 3, '2023-03-01', 19), (21, 7, 3, '2023-03-08', 8);
    ... ''')
    >>> con.close()
    >>> ds = read_omop(f"sqlite:///{path}")
    >>> ds.sessions[["day", "route", "dose_mg_per_kg"]].values.tolist()
    [[0.0, 'iv', 0.5], [3.0, 'iv', 0.5]]
    >>> ds.assessments[["day", "instrument", "score"]].values.tolist()
    [[0.0, 'PHQ-9', 19.0], [7.0, 'PHQ-9', 8.0]]
    >>> ds.patients[["age", "sex"]].values.tolist()
    [[43.0, 'female']]
    """
    from ._convert import to_dataset

    if index != "first_session":
        raise ValueError(f"read_omop: index must be 'first_session', got {index!r}")
    extract = extract_omop(url, schema=schema, vocabulary=vocabulary, chunk_rows=chunk_rows)
    return to_dataset(extract, index=index, vocabulary=vocabulary, min_age_topcode=min_age_topcode,
                      keep_key_map=keep_key_map, out=out, format=format, inputs=(_shown_url(url),))


def _shown_url(url: str) -> str:
    """The URL without its password, for the log."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the connection itself
        return "(database)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ketamine-outcomes import omop`` (``--out``, ``--format`` and
    ``--keep-key-map`` are added by :func:`analysis.io.cli.add_import_parser`)."""
    parser.add_argument("url", help="SQLAlchemy URL: duckdb:///file.duckdb, postgresql://user@host/db, sqlite:///file.db")
    parser.add_argument("--schema", default=None, help="schema holding the CDM tables (default the connection's)")


def run(args: argparse.Namespace) -> int:
    """Run ``ketamine-outcomes import omop``: 0 written, 1 problems in the source, 2 usage."""
    from .cli import run_import
    from .sdtm import as_import_problems

    return run_import(args, lambda: as_import_problems("omop", lambda: read_omop(
        args.url, schema=args.schema, out=args.out, format=args.format, keep_key_map=args.keep_key_map)))
