"""The vocabulary: exact entries and codes map silently, rules warn, unknown values get a suggestion."""

from __future__ import annotations

import pandas as pd
import pytest

import analysis
from analysis.io.vocabulary import KINDS, ROUTES, default_vocabulary


@pytest.mark.parametrize(("kind", "raw", "value"), [
    ("route", "IV", "iv"), ("route", "intravenous", "iv"), ("route", "IV infusion", "iv"), ("route", "INTRAVENOUS", "iv"),
    ("route", "SNOMED:47625008", "iv"), ("route", "snomed:78421000", "im"), ("route", "SNOMED:46713006", "intranasal"),
    ("route", "SNOMED:26643006", "oral"), ("route", "SNOMED:37839007", "sublingual"), ("route", "Lozenge", "sublingual"),
    ("instrument", "PHQ9", "PHQ-9"), ("instrument", "PHQ-9 total", "PHQ-9"), ("instrument", "LOINC:44261-6", "PHQ-9"),
    ("instrument", "LOINC:70274-6", "GAD-7"), ("instrument", "QIDS-SR16", "QIDS-SR16"),
    ("drug", "Ativan", "lorazepam"), ("drug", "lorazepam", "lorazepam"), ("drug", "RxNorm:6470", "lorazepam"),
    ("drug", "RxNorm:6130", "ketamine"), ("drug", "Ketalar", "ketamine"), ("drug", "Spravato", "esketamine"),
    ("drug", "RxNorm:35302", "sirolimus"), ("drug", "RxNorm:28439", "lamotrigine"), ("drug", "  KLONOPIN ", "clonazepam"),
])
def test_exact_entries_and_codes(kind, raw, value):
    found = default_vocabulary().lookup(kind, raw)
    assert (found.value, found.how) == (value, "exact")


@pytest.mark.parametrize(("kind", "raw", "value", "rule"), [
    ("route", "I.V", "iv", "punctuation"),
    ("route", "esketamine nasal spray", "intranasal", "extra words"),
    ("route", "IV push", "iv", "extra words"),
    ("drug", "Ketamine IV", "ketamine", "extra words"),
    ("drug", "ketamine HCl 50 mg/mL injection", "ketamine", "extra words"),
    ("drug", "esketamine nasal spray 28 mg device", "esketamine", "extra words"),
    ("instrument", "Phq_9", "PHQ-9", "punctuation"),
    ("instrument", "PHQ-9 score", "PHQ-9", "extra words"),
    ("instrument", "44261-6", "PHQ-9", "bare code"),
    ("instrument", "QIDS", "QIDS-SR16", "instrument registry"),
    ("instrument", "HAM-D", "HAM-D17", "instrument registry"),
])
def test_rule_mapped_values_name_their_rule(kind, raw, value, rule):
    found = default_vocabulary().lookup(kind, raw)
    assert (found.value, found.how, found.rule) == (value, "rule", rule)


def test_ambiguous_instrument_names_carry_a_note():
    assert "QIDS-C16" in default_vocabulary().lookup("instrument", "QIDS").note
    assert "21- and 24-item" in default_vocabulary().lookup("instrument", "HAMD").note


def test_unknown_values_and_codes():
    vocab = default_vocabulary()
    assert vocab.lookup("drug", "Zyprexa").how == "unknown"
    assert vocab.lookup("drug", "RxNorm:999999").how == "unknown"
    assert vocab.lookup("route", "rectal").how == "unknown"
    assert vocab.suggestion("drug", "Lorazepan") == '[vocabulary.drug] "Lorazepan" = "lorazepam"'
    assert vocab.suggestion("route", "zzz").startswith('[vocabulary.route] "zzz" = "<one of: iv, im, intranasal')


def test_additions_from_the_mapping_file_are_exact_and_take_precedence():
    vocab = default_vocabulary().with_additions({"route": {"IV push": "iv"}, "drug": {"RxNorm:2108478": "esketamine"}})
    assert vocab.lookup("route", "iv push").how == "exact"
    assert vocab.lookup("drug", "rxnorm:2108478").value == "esketamine"
    with pytest.raises(KeyError, match="unknown vocabulary kind 'dose'"):
        vocab.with_additions({"dose": {"a": "b"}})


def test_bundled_entries_are_sound():
    vocab = default_vocabulary()
    assert set(vocab.values("route")) == set(ROUTES)
    for name in vocab.values("instrument"):
        assert name in analysis.instrument_names()
    for kind in KINDS:
        for entry in vocab.entries(kind):
            assert entry.source, f"{kind} {entry.value} has no source"
    # a spelling is never two entries
    names = pd.Series([n.casefold() for e in vocab.entries("drug") for n in e.names])
    assert not names.duplicated().any()


def test_map_a_column_once_per_value():
    mapped, lookups = default_vocabulary().map("route", pd.Series(["IV", "IV", None, "nasal spray"]))
    assert mapped.fillna("(missing)").tolist() == ["iv", "iv", "(missing)", "intranasal"]
    assert [lk.raw for lk in lookups] == ["IV", "nasal spray"]


def test_validate_warns_at_each_ambiguous_instrument_name(valid_folder):
    assessments = valid_folder / "assessments.csv"
    frame = pd.read_csv(assessments, dtype=str)
    frame.loc[0, "instrument"] = "QIDS"
    frame.loc[0, "score"] = "10"
    frame.to_csv(assessments, index=False)
    report = analysis.validate(valid_folder)
    assert report.ok
    warned = [p for p in report.problems() if p.code == "ambiguous_instrument"]
    assert [(p.line, p.value) for p in warned] == [(2, "QIDS")]
    assert "QIDS-C16" in warned[0].message


def test_a_dataset_that_defines_the_name_itself_gets_no_ambiguity_warning(valid_folder):
    (valid_folder / "instruments.toml").write_text('["QIDS-C16"]\nmin_score = 0\nmax_score = 27\naliases = ["QIDS"]\n')
    assessments = valid_folder / "assessments.csv"
    frame = pd.read_csv(assessments, dtype=str)
    frame.loc[0, "instrument"] = "QIDS"
    frame.to_csv(assessments, index=False)
    report = analysis.validate(valid_folder)
    assert report.ok and not [p for p in report.problems() if p.code == "ambiguous_instrument"]
