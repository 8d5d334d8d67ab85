"""The instrument registry: built-in cut-offs, lookup by alias, user registration, docs in step."""

from __future__ import annotations

from pathlib import Path

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
    register_instrument(Instrument("EPDS", 0, 30, remission_max=9, severity_bands=((0, "none"), (13, "probable"))))
    try:
        assert "EPDS" in instrument_names()
        with pytest.raises(ValueError, match="clashes"):
            register_instrument(Instrument("epds", 0, 30))
        register_instrument(Instrument("epds", 0, 30, remission_max=10), replace=True)
        assert get_instrument("EPDS").remission_max == 10
    finally:
        unregister_instrument("EPDS")
    assert "EPDS" not in instrument_names()


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
