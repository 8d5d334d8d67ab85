"""Hostile input: a corpus of corrupted datasets, grown by property-based generation.

Every corrupted dataset must be either refused with the problem named (table, place, what
was expected) or give results identical to the clean dataset's for the patients the
corruption did not touch. ``validate`` never raises a traceback and never hangs.

The clean dataset is the first 30 patients of the bundled sample, as its raw CSV lines.
The corpus covers issue 10's findings (extreme study days, invisible characters, dates as
numbers, instrument definitions of another dataset, quoted line breaks, stray quotes, huge
fields, special files) and their neighbours; hypothesis then corrupts one cell or inserts
bytes anywhere. The CI-sized runs are small; the ``slow`` runs are the larger ones.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis import check_dataset, derive_outcomes
from analysis.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
N_PATIENTS = 30
TABLES = ("patients", "sessions", "assessments", "medications")
RESULTS = ("courses", "relapse", "durability")
TIMEOUT = 60  # seconds: a check that takes longer has hung


def _clean_lines() -> dict[str, list[str]]:
    keep = {f"P{i:04d}" for i in range(1, N_PATIENTS + 1)}
    out = {}
    for name in TABLES:
        lines = (SAMPLE / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        out[name] = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] in keep]
    return out


CLEAN = _clean_lines()
PATIENT_IDS = [line.split(",", 1)[0] for line in CLEAN["patients"][1:]]


def write_clean(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in CLEAN.items():
        (folder / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def clean_outcomes(tmp_path_factory):
    dataset = analysis.load_dataset(write_clean(tmp_path_factory.mktemp("clean") / "data"))
    assert dataset.report.n_warnings == 0
    out = derive_outcomes(dataset)
    assert len(out.courses) > 20 and len(out.relapse) > 5 and len(out.durability) > 20
    return out


def run_check(folder: Path):
    """check_dataset in a thread: (report, outcomes or None); fails on a hang or a traceback."""
    result: dict = {}

    def target():
        try:
            dataset, report = check_dataset(folder)
            result["report"] = report
            result["outcomes"] = derive_outcomes(dataset) if dataset is not None else None
        except BaseException as exc:  # noqa: BLE001 - any exception is the failure we look for
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"check_dataset did not return within {TIMEOUT} s"
    if "error" in result:
        raise AssertionError(f"check_dataset raised {type(result['error']).__name__}: {result['error']}") \
            from result["error"]
    return result["report"], result["outcomes"]


def assert_clear(report) -> None:
    """Every problem names its table and what is wrong, on one line."""
    for problem in report.problems():
        text = str(problem)
        assert problem.table and problem.message and "\n" not in text and "Traceback" not in text


def assert_untouched_identical(clean, out, touched: set[str]) -> None:
    for name in RESULTS:
        before, after = getattr(clean, name), getattr(out, name)
        before = before[~before["patient_id"].isin(touched)].reset_index(drop=True)
        after = after[~after["patient_id"].isin(touched)].reset_index(drop=True)
        shared = [c for c in before.columns if c in after.columns]
        pd.testing.assert_frame_equal(after[shared], before[shared], obj=name)
        # a drug only a touched patient had (or now has) adds or removes an exposure flag that is
        # False for everyone else
        for col in [c for c in before.columns if c not in after.columns]:
            assert col.startswith(("drug_", "class_")) and not before[col].any(), f"{name}: lost {col}"
        for col in [c for c in after.columns if c not in before.columns]:
            assert col.startswith(("drug_", "class_")) and not after[col].any(), f"{name}: {col} set for others"


# --- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A corruption of the clean folder; ``refused`` is the problem code it must be refused
    with (None: accepted, with ``touched`` the patients whose results may change)."""

    name: str
    corrupt: Callable[[Path], None]
    refused: str | None = None
    touched: frozenset[str] = frozenset()
    where: tuple[str, int | None, str | None] | None = None  # (table, line, column) of the problem


def edit(table: str, line: int, func: Callable[[list[str]], list[str]]):
    """Corrupt one line (1-based; the header is 1) of a table given as its fields."""
    def corrupt(folder: Path) -> None:
        path = folder / f"{table}.csv"
        lines = path.read_text(encoding="utf-8").split("\n")
        lines[line - 1] = ",".join(func(lines[line - 1].split(",")))
        path.write_text("\n".join(lines), encoding="utf-8")
    return corrupt


def set_field(table: str, line: int, column: str, value: str):
    index = CLEAN[table][0].split(",").index(column)

    def func(fields: list[str]) -> list[str]:
        fields[index] = value
        return fields
    return edit(table, line, func)


def rewrite(table: str, func: Callable[[str], str | bytes]):
    def corrupt(folder: Path) -> None:
        path = folder / f"{table}.csv"
        new = func(path.read_text(encoding="utf-8"))
        path.write_bytes(new if isinstance(new, bytes) else new.encode("utf-8"))
    return corrupt


def patient_on(table: str, line: int) -> str:
    return CLEAN[table][line - 1].split(",", 1)[0]


def all_days_of(table: str, patient: str, shift: float):
    def corrupt(folder: Path) -> None:
        path = folder / f"{table}.csv"
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        for i, line in enumerate(lines[1:], start=1):
            fields = line.split(",")
            if patient in ("*", fields[0]):
                fields[1] = f"{float(fields[1]) + shift:g}"
                lines[i] = ",".join(fields)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corrupt


def special(table: str, kind: str):
    def corrupt(folder: Path) -> None:
        path = folder / f"{table}.csv"
        path.unlink()
        if kind == "folder":
            path.mkdir()
        else:
            os.mkfifo(path)
    return corrupt


def other_dataset_redefines_phq9(folder: Path) -> None:
    """Load another dataset with its own PHQ-9 of 0-100 first (in this process)."""
    other = write_clean(folder.parent / "other")
    (other / "instruments.toml").write_text('["PHQ-9"]\nmin_score = 0\nmax_score = 100\nremission_max = 30\n')
    assert analysis.load_dataset(other).instrument_registry.get("PHQ-9").max_score == 100


def gzip_table(table: str):
    def corrupt(folder: Path) -> None:
        path = folder / f"{table}.csv"
        (folder / f"{table}.csv.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    return corrupt


S3, A5, P4, M2 = patient_on("sessions", 3), patient_on("assessments", 5), patient_on("patients", 4), patient_on("medications", 2)
BIG = "x" * 600_000 + "\n" + "y" * 600_000

CORPUS = [
    # one extreme study day (issue 10: it used to corrupt every other patient's intervals)
    Case("day 1e15", set_field("sessions", 3, "day", "1e15"), "implausible_day", where=("sessions", 3, "day")),
    Case("day 1e300", set_field("sessions", 3, "day", "1e300"), "implausible_day", where=("sessions", 3, "day")),
    Case("day -1e15", set_field("assessments", 5, "day", "-1e15"), "implausible_day", where=("assessments", 5, "day")),
    Case("day inf", set_field("sessions", 3, "day", "inf"), "type", where=("sessions", 3, "day")),
    Case("day 20 years", set_field("sessions", 3, "day", "7306"), "implausible_day", where=("sessions", 3, "day")),
    Case("day at the limit", all_days_of("sessions", S3, 7000), None, frozenset({S3})),
    # calendar dates written as numbers
    Case("yyyymmdd session day", set_field("sessions", 3, "day", "20230105"), "calendar_date",
         where=("sessions", 3, "day")),
    Case("yyyymmdd medication start", set_field("medications", 2, "start_day", "20230105"), "calendar_date",
         where=("medications", 2, "start_day")),
    Case("Excel serials, one patient", all_days_of("sessions", S3, 44931), "calendar_date"),
    Case("Excel serials, every session", all_days_of("sessions", "*", 44931), "calendar_date"),
    Case("Excel serials, every assessment", all_days_of("assessments", "*", 44931), "calendar_date"),
    Case("text date in a day", set_field("sessions", 3, "day", "2023-01-05"), "calendar_date",
         where=("sessions", 3, "day")),
    # invisible characters never split a patient, a site or an instrument
    Case("zero-width space in an id", set_field("sessions", 3, "patient_id", S3 + "\u200b")),
    Case("BOM before an id", set_field("assessments", 5, "patient_id", "\ufeff" + A5)),
    Case("NUL in an id", set_field("sessions", 3, "patient_id", S3[:2] + "\x00" + S3[2:])),
    Case("no-break space after an id", set_field("patients", 4, "patient_id", P4 + "\u00a0")),
    Case("spaces around an id", set_field("sessions", 3, "patient_id", f"  {S3} ")),
    Case("NUL in a site", set_field("patients", 4, "site", "site_A\x00")),
    Case("decomposed site", set_field("patients", 4, "site", "site_A\u0301"), None, frozenset({P4})),
    Case("word joiner in an instrument", set_field("assessments", 5, "instrument", "PHQ-9\u2060")),
    Case("soft hyphen in a route", set_field("sessions", 3, "route", "i\u00adv")),
    Case("BOM inside the header", rewrite("sessions", lambda t: "\ufeff\ufeff" + t)),
    Case("zero-width space in a column name", rewrite("assessments", lambda t: t.replace("score", "sco\u200bre", 1))),
    Case("a second patient that differs by a zero-width space",
         rewrite("patients", lambda t: t + P4 + "\u200b,site_A,40,male,70,MDD,1,false\n"), "field_uniqueness"),
    Case("an id of nothing but a BOM", set_field("sessions", 3, "patient_id", "\ufeff"), "not_nullable",
         where=("sessions", 3, "patient_id")),
    Case("a day of nothing but spaces", set_field("assessments", 5, "day", "   "), "not_nullable",
         where=("assessments", 5, "day")),
    Case("line break inside an id", set_field("patients", 4, "patient_id", f'"{P4}\nX"'), "control_character",
         where=("patients", 4, "patient_id")),
    # instrument definitions of another dataset never leak into this one
    Case("another dataset's PHQ-9", other_dataset_redefines_phq9),
    Case("a score valid only under another dataset's PHQ-9",
         lambda f: (other_dataset_redefines_phq9(f), set_field("assessments", 2, "score", "60")(f)), "score_range",
         where=("assessments", 2, "score")),
    # CSV structure
    Case("Windows line ends", rewrite("sessions", lambda t: t.replace("\n", "\r\n"))),
    Case("old Mac line ends", rewrite("assessments", lambda t: t.replace("\n", "\r"))),
    Case("blank lines", rewrite("sessions", lambda t: t.replace("\n", "\n\n", 5))),
    Case("no final line end", rewrite("sessions", lambda t: t.rstrip("\n"))),
    Case("everything quoted", rewrite("medications", lambda t: "\n".join(
        ",".join(f'"{v}"' for v in line.split(",")) for line in t.rstrip("\n").split("\n")) + "\n")),
    Case("quoted line break in a text value", set_field("patients", 4, "diagnosis", '"bipolar\ndepression"'),
         None, frozenset({P4})),
    Case("field over 1 MB with line breaks", set_field("patients", 4, "diagnosis", f'"{BIG}"'), None, frozenset({P4})),
    Case("stray quote", set_field("sessions", 3, "route", '"iv'), "parse", where=("sessions", 3, None)),
    Case("quote inside a value", set_field("patients", 4, "diagnosis", 'MDD 5\'10"'), None, frozenset({P4})),
    Case("extra field", edit("sessions", 3, lambda f: f + ["x"]), "parse", where=("sessions", 3, None)),
    Case("missing field", edit("assessments", 5, lambda f: f[:-1]), "parse", where=("assessments", 5, None)),
    Case("not UTF-8", rewrite("patients", lambda t: t.encode("utf-8").replace(b"site_B", b"site_\xe9", 1)), "encoding"),
    Case("empty file", rewrite("sessions", lambda t: ""), "empty"),
    Case("header only", rewrite("sessions", lambda t: t.split("\n")[0] + "\n"), "empty"),
    Case("gzip", gzip_table("assessments")),
    Case("a folder named sessions.csv", special("sessions", "folder"), "special_file"),
    Case("score 1e400", set_field("assessments", 5, "score", "1e400"), "type", where=("assessments", 5, "score")),
    Case("medication of one patient", edit("medications", 2, lambda f: f[:1] + ["ketamine-x"] + f[2:]),
         None, frozenset({M2})),
]
if hasattr(os, "mkfifo"):
    CORPUS.append(Case("a named pipe named sessions.csv", special("sessions", "fifo"), "special_file"))


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus(case, clean_outcomes, tmp_path):
    folder = write_clean(tmp_path / "data")
    case.corrupt(folder)
    report, out = run_check(folder)
    assert_clear(report)
    if case.refused is not None:
        assert not report.ok, f"{case.name}: accepted, expected {case.refused}"
        errors = report.problems("error")
        hits = [p for p in errors if p.code == case.refused]
        assert hits, f"{case.name}: expected {case.refused}, got:\n{report.format()}"
        if case.where is not None:
            table, line, column = case.where
            assert any((p.table, p.line, p.column) == (table, line, column) for p in hits), report.format()
    else:
        assert report.ok, f"{case.name}: refused:\n{report.format()}"
        assert_untouched_identical(clean_outcomes, out, set(case.touched))


def test_cli_validate_on_the_corpus_exits_1_without_traceback(tmp_path, capsys):
    for case in [c for c in CORPUS if c.refused is not None][:12]:
        folder = write_clean(tmp_path / case.name.replace(" ", "_").replace("/", "_"))
        case.corrupt(folder)
        assert main(["validate", str(folder)]) == 1, case.name
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out and "ERROR" in captured.err, case.name


def test_every_excel_serial_session_day_exits_1_not_0(tmp_path, capsys):
    folder = write_clean(tmp_path / "data")
    all_days_of("sessions", "*", 44931)(folder)
    assert main(["validate", str(folder)]) == 1
    assert "Excel date serial" in capsys.readouterr().err


# --- grown by hypothesis -------------------------------------------------------------------

INVISIBLE = ["\u200b", "\ufeff", "\x00", "\u2060", "\u00ad", "\u200e", "\u202e", "\x7f"]
HOSTILE = st.one_of(
    st.sampled_from(["1e15", "1e300", "-1e15", "20230105", "44931", "7306", "-7306", "inf", "nan", "NA", "",
                     '"', '""', "'", "1,5", "2023-01-05", "01/05/2023", "\ufeff", "P0001", "P0002", "iv", "PHQ-9",
                     "0x10", "1e400", "-0", "  7 ", "7305", "\u0301"]),
    st.text(alphabet=st.sampled_from(list("P0123456789.e-+ ,\"\n\r") + INVISIBLE), max_size=10),
    st.text(max_size=8),
)
COLUMNS = {name: CLEAN[name][0].split(",") for name in TABLES}


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def _one_cell(table: str, line: int, column: str, value: str, folder: Path) -> set[str]:
    """Write ``value`` (CSV-quoted as needed) into one cell; return the patients it may touch."""
    set_field(table, line, column, _quote(value))(folder)
    touched = {patient_on(table, line)}
    if column == "patient_id":  # the row now belongs to whatever patient the value names
        touched |= {p for p in PATIENT_IDS if p in value}
        touched |= {value.strip()}
        if table == "patients":  # sessions of the old id have lost their patient
            touched |= {patient_on(table, line)}
    return touched


def _line_count(table: str) -> int:
    return len(CLEAN[table])


cells = st.sampled_from(TABLES).flatmap(lambda t: st.tuples(
    st.just(t), st.integers(2, _line_count(t)), st.sampled_from(COLUMNS[t]), HOSTILE))


def _check_cell(clean, table, line, column, value):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_clean(Path(tmp) / "data")
        touched = _one_cell(table, line, column, value, folder)
        report, out = run_check(folder)
        assert_clear(report)
        if report.ok:
            assert_untouched_identical(clean, out, touched)
        else:  # refused: some error is placed at the cell, its column, or a patient it touched
            errors = report.problems("error")
            assert any((p.table == table and p.line == line) or p.column == column
                       or p.value in touched or p.code == "parse" for p in errors), report.format()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cell=cells)
def test_one_hostile_cell(clean_outcomes, cell):
    _check_cell(clean_outcomes, *cell)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cell=cells)
def test_one_hostile_cell_many(clean_outcomes, cell):
    _check_cell(clean_outcomes, *cell)


inserted = st.tuples(st.sampled_from(TABLES), st.integers(0, 10**9),
                     st.sampled_from(['"', "\n", "\r", "\r\n", ",", "\x00", "\ufeff", "\u200b", '""', "\n\n", " "]))


def _check_insert(clean, table, where, text):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_clean(Path(tmp) / "data")
        path = folder / f"{table}.csv"
        data = path.read_text(encoding="utf-8")
        at = where % (len(data) + 1)
        path.write_text(data[:at] + text + data[at:], encoding="utf-8")
        line = data.count("\n", 0, at) + 1
        report, out = run_check(folder)
        assert_clear(report)
        if report.ok and line > 1:
            own = CLEAN[table][line - 1].split(",", 1)[0] if line <= len(CLEAN[table]) else None
            assert_untouched_identical(clean, out, {own} - {None})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(insert=inserted)
def test_hostile_bytes_anywhere(clean_outcomes, insert):
    _check_insert(clean_outcomes, *insert)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(insert=inserted)
def test_hostile_bytes_anywhere_many(clean_outcomes, insert):
    _check_insert(clean_outcomes, *insert)


# --- derivations never depend on another patient's values ----------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(day=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e15, 1e300, -1e300, 5e-324])),
       which=st.integers(0, 10**6))
def test_one_patients_days_never_change_another_patients_outcomes(clean_outcomes, day, which):
    """Without validation (the Dataset built directly): any day of one patient, however extreme,
    leaves every other patient's outcomes as they were."""
    with tempfile.TemporaryDirectory() as tmp:
        ds = analysis.load_dataset(write_clean(Path(tmp) / "data"))
    sessions = ds.sessions.copy()
    row = which % len(sessions)
    sessions.loc[row, "day"] = day
    out = derive_outcomes(analysis.Dataset(ds.patients, sessions, ds.assessments, ds.medications, report=ds.report))
    assert_untouched_identical(clean_outcomes, out, {sessions.loc[row, "patient_id"]})


# --- the record scanner agrees with the parsers --------------------------------------------

csv_text = st.lists(
    st.lists(st.text(alphabet=st.sampled_from(list('ab1 ",\n\r')), max_size=5), min_size=3, max_size=3),
    min_size=1, max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(rows=csv_text, newline=st.sampled_from(["\n", "\r\n", "\r"]), quote_all=st.booleans())
def test_record_lines_agree_with_pythons_csv_module(rows, newline, quote_all):
    """The physical line each record starts on, as Python's csv module counts them."""
    import csv
    import io

    from analysis.reading import scan_records

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(
        [["h1", "h2", "h3"], *rows])
    text = buffer.getvalue()
    reader = csv.reader(io.StringIO(text, newline=""))
    expected, previous = [], 0
    for record in reader:
        if record:
            expected.append((previous + 1, record))
        previous = reader.line_num
    layout = scan_records(text.encode())
    keep = ~layout.blank
    assert layout.unclosed_quote is None
    assert layout.lines[keep].tolist() == [line for line, _ in expected]
    starts, ends = layout.starts[keep], layout.ends[keep]
    got = [next(csv.reader([text.encode()[s:e].decode()])) if e > s else [] for s, e in zip(starts, ends)]
    assert got == [record for _, record in expected]


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\n\r')), max_size=40))
def test_scanner_and_pyarrow_agree_on_any_text(text):
    """On any text, either the scan finds a problem or pyarrow reads as many rows as it finds records."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    from analysis.reading import scan_records

    data = ("h1,h2\n" + text).encode()
    layout = scan_records(data)
    if layout.unclosed_quote is not None:
        return
    try:
        table = pacsv.read_csv(io.BytesIO(data), parse_options=pacsv.ParseOptions(newlines_in_values=True),
                               convert_options=pacsv.ConvertOptions(column_types={"h1": pa.string(), "h2": pa.string()}))
    except pa.ArrowInvalid:
        return
    assert table.num_rows == int((~layout.blank).sum()) - 1
    assert np.all(np.diff(layout.lines) > 0)


def test_no_special_file_is_read(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes need POSIX")
    folder = write_clean(tmp_path / "data")
    (folder / "medications.csv").unlink()
    os.mkfifo(folder / "medications.csv")
    (folder / "notes").mkdir()  # other folders are ignored
    report, _ = run_check(folder)
    (p,) = [p for p in report.problems() if p.code == "special_file"]
    assert p.file == "medications.csv" and "named pipe (FIFO), not a file" in p.message
    shutil.rmtree(folder / "notes")
