"""The anonymisation guard on a corpus of disguised identifiers and of look-alikes.

``tests/fixtures/identifiers/disguises.csv`` has one row per disguise: where it hides
(a column name, a text value, a patient id, a numeric column, a second age column, a
free-text column), the column, the value and the kind (a key of
``analysis.anonymisation.KINDS``) the guard must report. ``lookalikes.csv`` has study data
that must not be flagged. Hypothesis varies both: separators, case, abbreviations,
embedding in prose, phone numbers of many countries, dates in many formats.
"""

from __future__ import annotations

import datetime as dt
import string
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis import anonymisation, check_dataset
from analysis.anonymisation import KINDS, find_identifiers, looks_like_calendar_date
from analysis.anonymisation.free_text import free_text_reason
from analysis.anonymisation.masking import mask
from analysis.anonymisation.names import identifier_key, is_age_column, tokens
from analysis.anonymisation.numbers import iban_ok, luhn_ok, nhs_number_ok
from analysis.anonymisation.people import find_names, looks_like_person_name
from analysis.anonymisation.phones import find_phones
from analysis.problems import ValidationReport

from tests.datasets import write_tables

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "identifiers"
DISGUISES = pd.read_csv(FIXTURES / "disguises.csv", dtype=str, keep_default_na=False)
LOOKALIKES = pd.read_csv(FIXTURES / "lookalikes.csv", dtype=str, keep_default_na=False)
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


# --- running one corpus row through the guard's public functions ---------------------------------


def _kinds_of(problem) -> set[str]:
    if problem.code == "free_text":
        return {"free_text"}
    if problem.code == "age_not_top_coded":
        return {"age"}
    if problem.code == "calendar_date":
        return {"date"}
    return {k.key for k in KINDS.values() if k.label in problem.message}


def run_guard(where: str, column: str, value: str) -> list:
    """The problems the guard reports for one corpus row."""
    report = ValidationReport("corpus")
    if where == "name":
        anonymisation.check_column_names("patients", ["patient_id", column], report)
        return report.problems()
    if where in ("value",):
        frame = pd.DataFrame({"patient_id": ["P01", "P02"], column: ["", value]}, dtype="string")
        anonymisation.check_identifying_values("patients", frame, [column], report, allow_free_text=[column])
    elif where == "id":
        frame = pd.DataFrame({column: ["P01", value]}, dtype="string")
        anonymisation.check_identifying_values("patients", frame, [column], report)
    elif where in ("numeric", "age"):
        frame = pd.DataFrame({"patient_id": pd.array(["P01"], dtype="string"), column: [float(value)]})
        anonymisation.check_identifying_values("patients", frame, [], report)
    elif where == "free_text":
        frame = pd.DataFrame({"patient_id": ["P01"], column: [value]}, dtype="string")
        anonymisation.check_identifying_values("patients", frame, [column], report)
    else:
        raise ValueError(where)
    return [p for p in report.problems() if p.column == column]


def _case_id(row) -> str:
    return f"{row.where}:{row.column}:{row.value}"[:60]


# --- the corpus: every disguise caught as its kind ------------------------------------------------


def test_the_corpus_covers_every_safe_harbor_kind():
    assert set(DISGUISES["kind"]) <= set(KINDS)
    letters = {KINDS[k].hipaa[1] for k in DISGUISES["kind"] if KINDS[k].hipaa.startswith("(")}
    assert letters == set("ABCDEFGHIJKLMNOPQR")
    assert len(DISGUISES) >= 150 and len(LOOKALIKES) >= 100


@pytest.mark.parametrize("row", list(DISGUISES.itertuples()), ids=_case_id)
def test_disguise_is_caught_as_its_kind(row):
    problems = run_guard(row.where, row.column, row.value)
    found = set().union(*(_kinds_of(p) for p in problems)) if problems else set()
    assert row.kind in found, f"{row.note or row.kind}: expected {row.kind}, got {found or 'nothing'}"


@pytest.mark.parametrize("row", list(LOOKALIKES.itertuples()), ids=_case_id)
def test_lookalike_is_not_flagged(row):
    problems = run_guard(row.where, row.column, row.value)
    assert not problems, f"{row.note or 'look-alike'} flagged:\n" + "\n".join(map(str, problems))


def test_corpus_score():
    caught = sum(
        row.kind in set().union(set(), *(_kinds_of(p) for p in run_guard(row.where, row.column, row.value)))
        for row in DISGUISES.itertuples()
    )
    clean = sum(not run_guard(row.where, row.column, row.value) for row in LOOKALIKES.itertuples())
    assert (caught, clean) == (len(DISGUISES), len(LOOKALIKES))


# --- the legitimate data validate without a problem ----------------------------------------------


def test_the_bundled_sample_validates_without_problems():
    _, report = check_dataset(SAMPLE)
    assert report.ok and report.n_warnings == 0, report.format()


def test_a_simulated_cohort_validates_without_problems(tmp_path):
    sim = analysis.simulate(2000, seed=11, n_sites=30)
    folder = write_tables(tmp_path / "sim", {name: sim.tables[name] for name in ("patients", "sessions", "assessments",
                                                                                    "medications")})
    _, report = check_dataset(folder)
    assert report.ok, report.format()


def test_the_test_fixture_validates_without_problems(valid_folder):
    _, report = check_dataset(valid_folder)
    assert report.ok, report.format()


# --- through the loader: the place of each problem --------------------------------------------------


def test_identifier_columns_are_refused_with_their_kind_and_how_to_deidentify(valid_folder, valid_tables):
    frame = valid_tables["patients"].assign(yob=[1980, 1975, 1990], zipcode=["02139", "10001", "94105"],
                                            guardian_name=["a", "b", "c"])
    write_tables(valid_folder, {"patients": frame})
    _, report = check_dataset(valid_folder)
    refused = {p.column: p for p in report.problems() if p.code == "identifier_column"}
    assert set(refused) == {"yob", "zipcode", "guardian_name"}
    assert "date of birth" in refused["yob"].message and "item C" in refused["yob"].message
    assert "address" in refused["zipcode"].message and "first three digits" in refused["zipcode"].message
    assert all(p.line == 1 and "pseudonyms" in p.message for p in refused.values())


def test_mrn_like_patient_ids_are_refused_on_their_line_and_masked(valid_folder, valid_tables):
    for name in ("patients", "sessions", "assessments", "medications"):
        frame = valid_tables[name].copy()
        frame["patient_id"] = frame["patient_id"].replace({"P02": "10034567"})
        valid_tables[name] = frame
    write_tables(valid_folder, valid_tables)
    _, report = check_dataset(valid_folder)
    p = [q for q in report.problems() if q.table == "patients" and q.column == "patient_id"][0]
    assert p.line == 3 and p.value == "1***7"
    assert "medical record number" in p.message and "re-key every patient to a pseudonym" in p.message
    assert "10034567" not in report.format()


def test_identifiers_in_every_text_column_are_found_and_never_printed(valid_folder, valid_tables):
    valid_tables["patients"] = valid_tables["patients"].assign(
        referral=["GP", "Jan 5, 2023", "192.0.2.10"], age_at_onset=[30, 95, 40])
    valid_tables["medications"] = valid_tables["medications"].assign(drug=["lorazepam", "jane@example.com"])
    write_tables(valid_folder, valid_tables)
    _, report = check_dataset(valid_folder)
    got = {(p.table, p.column, p.line, p.code) for p in report.problems()}
    assert ("patients", "referral", 3, "identifier_value") in got
    assert ("patients", "referral", 4, "identifier_value") in got
    assert ("patients", "age_at_onset", 3, "age_not_top_coded") in got
    assert ("medications", "drug", 3, "identifier_value") in got
    text = report.format()
    for raw in ("Jan 5, 2023", "192.0.2.10", "jane@example.com"):
        assert raw not in text


def test_free_text_is_refused_unless_allowed_and_still_scanned():
    frame = pd.DataFrame({"patient_id": ["P01", "P02", "P03"],
                          "notes": ["tolerated well", "nausea, settled", "spoke to Kim Lee on +44 7700 900123"]},
                         dtype="string")
    report = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, ["notes"], report)
    codes = [p.code for p in report.problems()]
    assert codes.count("free_text") == 1
    p = [q for q in report.problems() if q.code == "free_text"][0]
    assert p.column == "notes" and "allow_free_text=['notes']" in p.message
    allowed = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, ["notes"], allowed, allow_free_text=("notes",))
    assert {q.code for q in allowed.problems()} == {"identifier_value"}
    assert {(q.row, q.value) for q in allowed.problems()} == {(3, "+***3"), (3, "K***e")}


def test_allow_free_text_through_the_loader(valid_folder, valid_tables):
    notes = ["tolerated well", "nausea after the second infusion", "felt better"]
    write_tables(valid_folder, {"patients": valid_tables["patients"].assign(notes=notes)})
    _, refused = check_dataset(valid_folder)
    assert [(p.column, p.line, p.code) for p in refused.problems()] == [("notes", 1, "free_text")]
    dataset, allowed = check_dataset(valid_folder, allow_free_text=["notes"])
    assert allowed.ok and dataset.patients["notes"].tolist() == notes
    write_tables(valid_folder, {"patients": valid_tables["patients"].assign(notes=[*notes[:2], "ring 07700 900123"])})
    _, still = check_dataset(valid_folder, allow_free_text=["notes"])
    assert [(p.column, p.line, p.value) for p in still.problems()] == [("notes", 4, "0***3")]


def test_free_text_is_recognised_by_its_values():
    prose = pd.Series(["she felt much better after the second infusion", "no change at all since last week",
                       "asked to move the next session to the morning"])
    assert "prose" in free_text_reason("outcome", prose)
    assert free_text_reason("timing", pd.Series(["pre-session", "daily", "as needed", "daily"])) is None
    assert free_text_reason("diagnosis", pd.Series(["MDD", "bipolar depression"])) is None


def test_allow_free_text_accepts_any_collection():
    frame = pd.DataFrame({"patient_id": ["P01"], "comments": ["fine"]}, dtype="string")
    for allowed in (["comments"], ("comments",), {"comments"}, frozenset({"comments"})):
        report = ValidationReport()
        anonymisation.check_identifying_values("patients", frame, ["comments"], report, allow_free_text=allowed)
        assert report.ok


def test_second_age_columns_are_top_coded_like_age():
    frame = pd.DataFrame({"patient_id": pd.array(["P01", "P02", "P03"], dtype="string"),
                          "age_at_onset": [95.0, 90.0, 40.0], "age_months": [1100.0, 2.0, 30.0]})
    report = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, [], report)
    assert [(p.column, p.row, float(p.value)) for p in report.problems()] == [("age_at_onset", 1, 95.0)]


def test_the_age_of_the_patients_table_is_left_to_check_top_coded_age():
    frame = pd.DataFrame({"patient_id": pd.array(["P01"], dtype="string"), "age": [95.0]})
    report = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, [], report)
    assert report.ok
    anonymisation.check_identifying_values("sessions", frame, [], report)
    assert [p.code for p in report.problems()] == ["age_not_top_coded"]


# --- the parts ----------------------------------------------------------------------------------------


def test_tokens_split_camel_case_digits_and_separators():
    assert tokens("DateOfBirth") == ["date", "of", "birth"]
    assert tokens("patient.Phone-Number_2") == ["patient", "phone", "number"]
    assert tokens("IPAddr") == ["ip", "addr"]
    assert tokens("nextofkin") == ["next", "of", "kin"]
    assert tokens("dobutamine") == ["dobutamine"]


def test_is_age_column():
    assert all(map(is_age_column, ["age", "age_at_onset", "onset_age", "AgeYears", "age2", "Age at first session"]))
    assert not any(map(is_age_column, ["dosage", "stage", "page_count", "age_months", "gestational_age_weeks"]))


def test_check_digits():
    assert nhs_number_ok("9434765919") and not nhs_number_ok("9434765918") and not nhs_number_ok("123")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112") and not luhn_ok("0000000000000")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


def test_people_need_a_mark_to_be_found():
    assert find_names("seen by Dr. Okafor") == ["Dr. Okafor"]
    assert find_names("Priya Patel attended") == ["Priya Patel"]
    assert find_names("rang Doe about the next session") == []  # no mark: out of reach (documented)
    assert looks_like_person_name("Jane Doe") and not looks_like_person_name("P0001")


def test_mask_shows_only_the_ends():
    assert mask("jane.doe@example.org") == "j***g"
    assert mask("  +44 7700 900123 ") == "+***3"
    assert mask("ab") == "***"


def test_check_column_names_returns_the_refused_columns_in_order():
    report = ValidationReport()
    assert anonymisation.check_column_names("patients", ["mrn1", "site", "fname", "day"], report) == ["mrn1", "fname"]
    assert [p.column for p in report.problems()] == ["mrn1", "fname"]


def test_a_column_named_with_an_identifier_is_shown_masked():
    report = ValidationReport()
    assert anonymisation.check_column_names("patients", ["jane.doe@example.org"], report) == ["jane.doe@example.org"]
    p = report.problems()[0]
    assert p.column == "j***g" and "jane" not in str(p)


def test_every_kind_is_in_the_documentation():
    text = (Path(__file__).resolve().parents[1] / "docs" / "anonymisation.md").read_text(encoding="utf-8")
    for kind in KINDS.values():
        assert kind.label in text, kind.label


# --- hypothesis: the same identifiers, spelled differently ------------------------------------------

_NAME_PHRASES = [
    (["date", "of", "birth"], "birth_date"), (["dob"], "birth_date"), (["yob"], "birth_date"),
    (["birth", "date"], "birth_date"), (["first", "name"], "name"), (["last", "name"], "name"),
    (["fname"], "name"), (["lname"], "name"), (["surname"], "name"), (["next", "of", "kin"], "relative"),
    (["guardian", "name"], "relative"), (["zip", "code"], "address"), (["post", "code"], "address"),
    (["address"], "address"), (["addr"], "address"), (["street"], "address"), (["phone", "number"], "phone"),
    (["tel"], "phone"), (["mobile"], "phone"), (["fax"], "fax"), (["email"], "email"),
    (["email", "address"], "email"), (["ssn"], "national_id"), (["nhs", "number"], "national_id"),
    (["social", "security", "number"], "national_id"), (["mrn"], "mrn"), (["medical", "record", "number"], "mrn"),
    (["hospital", "number"], "mrn"), (["health", "plan", "id"], "health_plan"), (["account", "number"], "account"),
    (["acct"], "account"), (["licence", "number"], "licence"), (["license"], "licence"), (["vin"], "vehicle"),
    (["device", "serial"], "device"), (["serial", "number"], "device"), (["url"], "url"), (["website"], "url"),
    (["ip", "address"], "ip"), (["ip", "addr"], "ip"), (["biometric"], "biometric"), (["fingerprint"], "biometric"),
    (["photo"], "photo"), (["visit", "date"], "date"), (["timestamp"], "date"),
]
_BENIGN_PHRASES = [
    ["patient", "id"], ["site"], ["day"], ["study", "day"], ["dose", "mg", "per", "kg"], ["baseline", "gad7"],
    ["drug"], ["drug", "class"], ["drug", "name"], ["comorbid", "ptsd"], ["prior", "treatment", "failures"],
    ["weight", "kg"], ["diagnosis"], ["instrument"], ["score"], ["start", "day"], ["end", "day"], ["timing"],
    ["cell", "count"], ["birth", "weight"], ["session", "number"], ["employment", "status"], ["site", "name"],
    ["dissociation"], ["duration", "min"], ["bolus", "mg"], ["phase"], ["route"], ["age", "at", "onset"],
]


def _spell(words: list[str], style: str) -> str:
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "space":
        return " ".join(words)
    if style == "dot":
        return ".".join(words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "camel":
        return words[0] + "".join(w.title() for w in words[1:])
    if style == "pascal":
        return "".join(w.title() for w in words)
    if style == "title":
        return " ".join(w.title() for w in words)
    raise ValueError(style)


_STYLES = st.sampled_from(["snake", "kebab", "space", "dot", "upper", "camel", "pascal", "title"])


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(_NAME_PHRASES), style=_STYLES,
       prefix=st.sampled_from([[], ["patient"], ["home"], ["primary"], ["pt"], ["contact"]]),
       suffix=st.sampled_from(["", "1", "2", "_01", " (old)"]))
def test_identifier_names_in_any_spelling(case, style, prefix, suffix):
    words, kind = case
    if kind == "ip" or (prefix == ["contact"] and kind in ("phone", "relative")):
        prefix = []  # "ip" must be the whole name; "contact phone" and "contact name" are fine as they are
    column = _spell(prefix + words, style) + suffix
    assert identifier_key(column) == kind, column


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(_NAME_PHRASES), sep=st.sampled_from(["", "_"]))
def test_identifier_names_run_together(case, sep):
    words, kind = case
    column = sep.join(words).lower()
    assert identifier_key(column) == kind, column


@settings(max_examples=200, deadline=None)
@given(words=st.sampled_from(_BENIGN_PHRASES), style=_STYLES, suffix=st.sampled_from(["", "1", "_2", "_v2"]))
def test_benign_names_in_any_spelling_are_kept(words, style, suffix):
    column = _spell(words, style) + suffix
    assert identifier_key(column) is None, column
    assert find_identifiers(column) == [], column


_PROSE_BEFORE = st.sampled_from(["", "note: ", "pt says ", "call back on ", "(", "ref ", "Seen today, ", "- "])
_PROSE_AFTER = st.sampled_from(["", ".", ")", " thanks", " after the session", "; no change", ", ok"])
_VALUE_DISGUISES = [
    ("jane.doe@example.org", "email"), ("j.smith+kt@nhs.net", "email"), ("+44 7700 900123", "phone"),
    ("(212) 555-0123", "phone"), ("123-45-6789", "national_id"), ("943 476 5919", "national_id"),
    ("2023-01-05", "date"), ("05/01/2023", "date"), ("Jan 5, 2023", "date"), ("5 January 2023", "date"),
    ("20230105", "date"), ("2023-01-05T10:15:30.5Z", "date"), ("192.0.2.10", "ip"), ("2001:db8::1", "ip"),
    ("https://example.org/x", "url"), ("www.example.com", "url"), ("MRN 12345678", "mrn"), ("SW1A 1AA", "address"),
]


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from(_VALUE_DISGUISES), before=_PROSE_BEFORE, after=_PROSE_AFTER)
def test_identifier_values_embedded_in_prose(case, before, after):
    value, kind = case
    text = before + value + after
    assert kind in {f.kind for f in find_identifiers(text)}, text


_ALL_REGIONS = ["US", "GB", "DE", "FR", "AU", "CA", "IN", "ES", "IT", "NL", "BR", "JP", "CN", "ZA", "IE", "NZ", "SE",
                "MX", "NG", "KE"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(region=st.sampled_from(_ALL_REGIONS),
       kind=st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]),
       fmt=st.sampled_from([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164,
                            phonenumbers.PhoneNumberFormat.NATIONAL]),
       before=_PROSE_BEFORE)
def test_phone_numbers_of_many_countries(region, kind, fmt, before):
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None:
        return
    if fmt == phonenumbers.PhoneNumberFormat.NATIONAL and region not in ("US", "GB", "DE", "FR", "AU", "CA", "IN"):
        fmt = phonenumbers.PhoneNumberFormat.INTERNATIONAL  # national formats: only the regions searched
    text = before + phonenumbers.format_number(number, fmt)
    assert "phone" in {f.kind for f in find_identifiers(text)} or find_phones(text), text


_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d %B %Y", "%d %b %Y",
                 "%b %d, %Y", "%B %d %Y", "%Y%m%d", "%d-%b-%Y", "%d%b%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                 "%Y-%m-%dT%H:%M:%S.%f", "%B %Y"]


@settings(max_examples=300, deadline=None)
@given(day=st.datetimes(min_value=dt.datetime(1920, 1, 1), max_value=dt.datetime(2035, 12, 31)),
       fmt=st.sampled_from(_DATE_FORMATS), zone=st.sampled_from(["", "Z", "+01:00", "-0500"]),
       upper=st.booleans(), before=_PROSE_BEFORE)
def test_dates_in_many_formats(day, fmt, zone, upper, before):
    text = day.strftime(fmt) + (zone if "T" in fmt else "")
    if upper:
        text = text.upper()
    assert looks_like_calendar_date(pd.Series([text])).tolist() == [True], text
    assert "date" in {f.kind for f in find_identifiers(before + text)}, before + text


@settings(max_examples=300, deadline=None)
@given(x=st.one_of(st.integers(-9_999, 9_999_999).map(str),
                   st.floats(0, 100_000, allow_nan=False).map(lambda v: f"{v:.2f}"),
                   st.floats(0, 10, allow_nan=False).map(lambda v: f"{v:g} mg/kg"),
                   st.tuples(st.integers(0, 92), st.integers(0, 92)).map(lambda t: f"{t[0]}-{t[1]}"),
                   st.tuples(st.integers(0, 92), st.integers(1, 92)).map(lambda t: f"{t[0]}/{t[1]}"),
                   st.integers(0, 400).map(lambda d: f"day {d}"),
                   st.sampled_from(["PHQ-9", "GAD-7", "MADRS", "QIDS-SR16", "BDI-II", "HAM-D17", "PCL-5", "CADSS"])
                   .flatmap(lambda i: st.integers(0, 60).map(lambda s: f"{i} {s}"))))
def test_study_numbers_are_not_identifiers(x):
    assert find_identifiers(x) == [], x


@settings(max_examples=200, deadline=None)
@given(pid=st.one_of(st.from_regex(r"\AP\d{1,7}\Z"), st.from_regex(r"\A[A-Z]{2,4}-\d{1,6}\Z"),
                     st.from_regex(r"\Asite_[A-Z]{1,2}_\d{1,5}\Z"), st.integers(0, 9_999_999).map(str),
                     st.text(alphabet=string.ascii_lowercase + string.digits, min_size=6, max_size=12)
                     .filter(lambda s: sum(c.isdigit() for c in s) < 7)))
def test_pseudonyms_are_accepted(pid):
    frame = pd.DataFrame({"patient_id": [pid]}, dtype="string")
    report = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, ["patient_id"], report)
    assert report.ok, report.format()


@settings(max_examples=100, deadline=None)
@given(column=st.sampled_from(["age_at_onset", "onset_age", "AgeYears", "age2", "Age at first session"]),
       ages=st.lists(st.integers(0, 130), min_size=1, max_size=20))
def test_second_age_columns_flag_exactly_the_ages_over_89(column, ages):
    frame = pd.DataFrame({"patient_id": pd.array([f"P{i}" for i in range(len(ages))], dtype="string"),
                          column: np.array(ages, dtype=float)})
    report = ValidationReport()
    anonymisation.check_identifying_values("patients", frame, [], report)
    flagged = sorted(p.row - 1 for p in report.problems())
    assert flagged == [i for i, a in enumerate(ages) if a > 89 and a != 90][:20]


def test_short_plain_ids_take_the_fast_path_without_changing_findings():
    """Ids of up to two letters and seven digits skip the scanners (a registry of a million
    patients has a million of them); the full scan finds nothing in any of them either."""
    import itertools
    import random
    import string

    from analysis.anonymisation import values

    rng = random.Random(7)
    prefixes = [""] + list(string.ascii_letters) + ["".join(p) for p in itertools.product(string.ascii_letters, repeat=2)]
    ids = [p + sep + str(rng.randint(0, 9_999_999)).zfill(rng.randint(1, 7))
           for p in prefixes for sep in ("", "-", "_")]
    assert all(values.PLAIN_ID.fullmatch(v) for v in ids)
    assert [v for v in ids if values.find_identifiers(v, names=False) or values.people.looks_like_person_name(v)] == []
    # what the fast path does not cover is still scanned
    assert [f.kind for f in values.find_in_id("MRN1234567")] == ["mrn"]
    assert [f.kind for f in values.find_in_id("12345678")] == ["mrn"]
