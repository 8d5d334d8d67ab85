"""The instrument registry: built-in cut-offs, lookup by alias, user registration, docs in step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import Instrument, get_instrument, instrument_names, register_instrument
from analysis.instruments import load_instrument_file, unregister_instrument
from analysis.schema import DICTIONARY_BEGIN, DICTIONARY_END, data_dictionary_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"

# DESIGN.md section 3: (range, remission cut-off, severity band lower bounds)
EXPECTED = {
    "PHQ-9": ((0, 27), 4, [0, 5, 10, 15, 20]),
    "MADRS": ((0, 60), 10, [0, 7, 20, 35]),
    "QIDS-SR16": ((0, 27), 5, [0, 6, 11, 16, 21]),
    "BDI-II": ((0, 63), 13, [0, 14, 20, 29]),
    "HAM-D17": ((0, 52), 7, [0, 8, 17, 24]),
    "GAD-7": ((0, 21), 4, [0, 5, 10, 15]),
    "PCL-5": ((0, 80), None, [0, 31]),
    "CADSS": ((0, 92), None, []),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_built_in_instruments_follow_the_design(name):
    (lo, hi), remission, bounds = EXPECTED[name]
    inst = get_instrument(name)
    assert (inst.min_score, inst.max_score, inst.remission_max) == (lo, hi, remission)
    assert [b for b, _ in inst.severity_bands] == bounds


def test_remission_is_at_or_below_the_cut_off():
    phq = get_instrument("PHQ-9")
    assert phq.is_remission(4) and not phq.is_remission(5)
    assert phq.severity(4) == "minimal" and phq.severity(5) == "mild" and phq.severity(27) == "severe"
    with pytest.raises(ValueError, match="no remission cut-off"):
        get_instrument("CADSS").is_remission(3)


@pytest.mark.parametrize("alias", ["phq9", "PHQ_9", "phq 9", "44261-6", "Phq-9"])
def test_lookup_ignores_case_punctuation_and_uses_aliases(alias):
    assert get_instrument(alias).name == "PHQ-9"


def test_unknown_instrument_lists_the_known_ones():
    with pytest.raises(KeyError, match="PHQ-9"):
        get_instrument("HADS")


def test_register_and_replace():
    # a name no docs example registers (they share the process-wide registry with this test)
    register_instrument(Instrument("EPDS-reg", 0, 30, remission_max=9, severity_bands=((0, "none"), (13, "probable"))))
    try:
        assert "EPDS-reg" in instrument_names()
        with pytest.raises(ValueError, match="clashes"):
            register_instrument(Instrument("epds reg", 0, 30))
        register_instrument(Instrument("epds reg", 0, 30, remission_max=10), replace=True)
        assert get_instrument("EPDS-reg").remission_max == 10
    finally:
        unregister_instrument("EPDS-reg")
    assert "EPDS-reg" not in instrument_names()


def test_built_ins_cannot_be_overwritten_by_accident():
    with pytest.raises(ValueError, match="clashes"):
        register_instrument(Instrument("PHQ9", 0, 27, remission_max=9))
    assert get_instrument("PHQ-9").remission_max == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_score": 10, "max_score": 5}, "must be below"),
        ({"min_score": 0, "max_score": 10, "remission_max": 11}, "outside"),
        ({"min_score": 0, "max_score": 10, "severity_bands": ((5, "b"), (2, "a"))}, "increase"),
        ({"min_score": 0, "max_score": float("nan")}, "finite"),
    ],
)
def test_bad_definitions_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Instrument("bad", **kwargs)


def test_instrument_file(tmp_path):
    path = tmp_path / "instruments.toml"
    path.write_text('[SDS-test]\nmin_score = 20\nmax_score = 80\nremission_max = 49\naliases = ["zung"]\n')
    try:
        (inst,) = load_instrument_file(path)
        assert get_instrument("zung") is inst and inst.max_score == 80
        load_instrument_file(path)  # the same definition again is fine
    finally:
        unregister_instrument("SDS-test")
    path.write_text('[Y]\nmin_score = 0\nmax_score = 5\ncolour = "red"\n')
    with pytest.raises(ValueError, match="unknown field"):
        load_instrument_file(path)


def test_docs_table_matches_the_registry():
    lines = (DOCS / "instruments.md").read_text(encoding="utf-8").splitlines()
    for name, ((lo, hi), remission, _) in EXPECTED.items():
        row = next(line for line in lines if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert cells[1] == f"{lo}–{hi}"
        assert cells[2] == (str(remission) if remission is not None else "—")


def test_data_dictionary_in_docs_is_generated_from_the_schema():
    text = (DOCS / "data-format.md").read_text(encoding="utf-8")
    block = text[text.index(DICTIONARY_BEGIN) + len(DICTIONARY_BEGIN): text.index(DICTIONARY_END)]
    assert block.strip() == data_dictionary_markdown().strip(), (
        "docs/data-format.md is out of date: run "
        "python -c \"from analysis.schema import update_data_dictionary; update_data_dictionary('docs/data-format.md')\""
    )


# --- registries are per dataset: a load never changes the process-wide registry --------------

PHQ_0_100 = '["PHQ-9"]\nmin_score = 0\nmax_score = 100\nremission_max = 20\n'


def _folder(tmp_path, name, score=None, toml=None):
    from tests.datasets import VALID_TABLES, write_tables

    tables = {n: f.copy() for n, f in VALID_TABLES.items()}
    if score is not None:
        tables["assessments"].loc[0, "score"] = score  # P01's PHQ-9 baseline
    folder = write_tables(tmp_path / name, tables)
    if toml is not None:
        (folder / "instruments.toml").write_text(toml)
    return folder


def test_instruments_toml_does_not_leak_into_another_dataset(tmp_path):
    from analysis import check_dataset, validate

    x, report_x = check_dataset(_folder(tmp_path, "x", score=60, toml=PHQ_0_100))
    assert report_x.ok and x.instrument_registry.get("PHQ-9").max_score == 100
    report_y = validate(_folder(tmp_path, "y", score=60))
    (p,) = [p for p in report_y.problems() if p.code == "score_range"]
    assert (p.table, p.line, p.column, p.value) == ("assessments", 2, "score", 60.0) and "0 to 27" in p.message
    assert get_instrument("PHQ-9").max_score == 27 and get_instrument("PHQ-9").remission_max == 4


def test_a_datasets_own_instruments_drive_its_outcomes(tmp_path):
    from analysis import derive_outcomes, load_dataset

    x = load_dataset(_folder(tmp_path, "x", toml=PHQ_0_100))
    y = load_dataset(_folder(tmp_path, "y"))
    assert derive_outcomes(x).definitions.remission_max_applied == 20
    assert derive_outcomes(y).definitions.remission_max_applied == 4
    # subsets keep the registry; equal tables with different definitions are different data
    assert x.subset(["P01"]).instrument_registry.get("PHQ-9").remission_max == 20
    assert x != y and y == load_dataset(_folder(tmp_path, "y2"))


def test_an_instrument_only_the_dataset_defines(tmp_path, valid_tables):
    import analysis
    from analysis.response import response_table

    toml = '["EPDS-x"]\nmin_score = 0\nmax_score = 30\nremission_max = 9\naliases = ["epdsx"]\n'
    folder = _folder(tmp_path, "e", toml=toml)
    (folder / "assessments.csv").write_text(
        "patient_id,day,instrument,score\nP01,0,epdsx,20\nP01,3,EPDS-x,8\nP01,5,EPDS-x,6\nP02,0,PHQ-9,12\n")
    ds = analysis.load_dataset(folder)
    assert "EPDS-x" not in instrument_names()
    with pytest.raises(KeyError):
        get_instrument("EPDS-x")
    out = analysis.derive_outcomes(ds, "epdsx")
    assert out.instrument == "EPDS-x" and out.definitions.remission_max_applied == 9
    assert out.courses.set_index("patient_id").loc["P01", "baseline_score"] == 20
    assert response_table(ds, outcomes=out, instrument="epdsx").attrs["instrument"] == "EPDS-x"
    # the same tables from frames, with the dataset's instruments, give an equal dataset
    tables = {**valid_tables, "assessments": pd.read_csv(folder / "assessments.csv")}
    assert analysis.Dataset.from_frames(**tables, instruments=ds.instrument_registry) == ds
    assert analysis.Dataset.from_frames(**tables, instruments=folder / "instruments.toml") == ds
    with pytest.raises(analysis.DataValidationError, match="unknown instrument"):
        analysis.Dataset.from_frames(**tables)


def test_load_instrument_file_into_a_registry_leaves_the_process_registry_alone(tmp_path):
    from analysis.instruments import InstrumentRegistry, default_registry

    path = tmp_path / "instruments.toml"
    path.write_text(PHQ_0_100)
    registry = default_registry().copy()
    (inst,) = load_instrument_file(path, replace=True, registry=registry)
    assert registry.get("phq9") is inst and inst.max_score == 100
    assert get_instrument("PHQ-9").max_score == 27
    assert isinstance(registry, InstrumentRegistry) and registry.names() == instrument_names()
