"""The format's category columns (``sex``, ``route``, ``phase``, ``instrument``) are pandas
``category`` in a loaded dataset and in the derived tables that carry them (issue 15), and
every consumer gives what it gave when they were text: counts without rows for categories
no row has, models whose levels are the values present, parts that concatenate to the same
dtype, Parquet round trips.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.dataset import category_dtype
from analysis.outcomes.partitioned import derive_outcomes_partitioned, partition_dataset
from analysis.schema import ROUTES, TABLES

CATEGORY_COLUMNS = {"patients": ["sex"], "sessions": ["route", "phase"], "assessments": ["instrument"]}


@pytest.fixture(scope="module")
def sample():
    return analysis.load_dataset(analysis.sample_path())


@pytest.fixture(scope="module")
def outcomes(sample):
    return analysis.derive_outcomes(sample, "PHQ-9")


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its categorical columns as ``string``: the dtype before issue 15."""
    return frame.astype({c: "string" for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
                         and c in ("sex", "route", "phase", "instrument")})


def test_the_schema_lists_every_category_column():
    found = {name: [c.name for c in spec.columns if c.kind == "category"] for name, spec in TABLES.items()}
    assert {n: cols for n, cols in found.items() if cols} == CATEGORY_COLUMNS


def test_loaded_category_columns_are_categorical_with_documented_categories(sample):
    for table, columns in CATEGORY_COLUMNS.items():
        frame = getattr(sample, table)
        for col in columns:
            dtype = frame[col].dtype
            assert isinstance(dtype, pd.CategoricalDtype) and not dtype.ordered, (table, col)
            spec = TABLES[table].column(col)
            if spec.allowed:  # fixed: the allowed values, sorted, whatever the data hold
                assert list(dtype.categories) == sorted(spec.allowed)
            else:  # instrument: those recorded, sorted
                assert list(dtype.categories) == sorted(frame[col].astype(str).unique())
    assert list(sample.sessions["route"].cat.categories) == sorted(ROUTES)
    assert "oral" not in set(sample.sessions["route"])  # a category no row has
    # identifiers and other text stay pandas string
    for table, col in [("patients", "patient_id"), ("patients", "site"), ("patients", "diagnosis"),
                       ("medications", "drug"), ("medications", "drug_class"), ("medications", "timing")]:
        assert getattr(sample, table)[col].dtype == pd.StringDtype(), (table, col)


def test_csv_parquet_and_frames_give_the_same_categoricals(sample, tmp_path):
    for name, frame in sample.tables.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    again = analysis.load_dataset(tmp_path)
    assert again.equals(sample)
    for table, columns in CATEGORY_COLUMNS.items():
        for col in columns:
            assert getattr(again, table)[col].dtype == getattr(sample, table)[col].dtype
    assert analysis.Dataset.from_frames(**sample.tables).equals(sample)
    assert analysis.Dataset.from_frames(**{n: as_text(t) for n, t in sample.tables.items()}).equals(sample)


def test_a_categorical_parquet_column_with_dirty_text_is_cleaned_not_refused(sample, tmp_path):
    sessions = sample.sessions.copy()
    sessions["route"] = sessions["route"].cat.add_categories([" IV"])
    sessions.loc[0, "route"] = " IV"
    for name, frame in {**sample.tables, "sessions": sessions}.items():
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    ds = analysis.load_dataset(tmp_path)
    assert ds.sessions["route"].iloc[0] == "iv" and ds.sessions["route"].dtype == sample.sessions["route"].dtype
    assert [p.code for p in ds.report.problems()] == ["normalised"]


def test_category_dtype():
    assert list(category_dtype(TABLES["patients"].column("sex")).categories) == ["female", "male", "other", "unknown"]
    inst = TABLES["assessments"].column("instrument")
    assert list(category_dtype(inst, pd.Series(["PHQ-9", None, "GAD-7"])).categories) == ["GAD-7", "PHQ-9"]
    with pytest.raises(ValueError, match="not a category"):
        category_dtype(TABLES["patients"].column("site"))


def test_derived_tables_carry_the_dataset_dtypes(sample, outcomes):
    carried = {"courses": ["sex"], "durability": ["route", "phase", "sex"], "relapse": ["route", "phase", "sex"],
               "relapse_competing": ["route", "phase", "sex"]}
    for name, columns in carried.items():
        table = getattr(outcomes, name)
        for col in columns:
            source = sample.patients if col == "sex" else sample.sessions
            assert table[col].dtype == source[col].dtype, (name, col)
    # the derivation's own instrument name is a constant text column, not the assessments' categorical
    assert outcomes.courses["instrument"].dtype == object or pd.api.types.is_string_dtype(outcomes.courses["instrument"])
    assert not isinstance(outcomes.courses["instrument"].dtype, pd.CategoricalDtype)


def test_values_are_those_of_the_text(sample, outcomes):
    """The categorical tables hold exactly what the text tables held."""
    text = analysis.Dataset(**{n: as_text(t) for n, t in sample.tables.items()}, report=sample.report,
                            instrument_registry=sample.instrument_registry)
    from_text = analysis.derive_outcomes(text, "PHQ-9")
    for f in dataclasses.fields(outcomes):
        a = getattr(outcomes, f.name)
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(as_text(a), getattr(from_text, f.name), check_exact=True, obj=f.name)


def test_parts_concatenate_to_the_same_dtype(sample, outcomes):
    parts = partition_dataset(sample, n_partitions=3)
    for table, columns in CATEGORY_COLUMNS.items():
        whole = pd.concat([getattr(p, table) for p in parts])
        for col in columns:
            assert whole[col].dtype == getattr(sample, table)[col].dtype, (table, col)
    combined = derive_outcomes_partitioned(sample, "PHQ-9", n_partitions=3)
    for name in ("courses", "durability", "relapse", "relapse_competing"):
        pd.testing.assert_frame_equal(getattr(combined, name), getattr(outcomes, name), check_exact=True, obj=name)
    assert combined.durability["route"].dtype == sample.sessions["route"].dtype


def test_counts_list_only_routes_and_instruments_present(sample, outcomes):
    """Regression: a count by a categorical lists every category (``value_counts``,
    ``observed=False``); the report's tables and ``Dataset.instruments`` list those present."""
    from analysis.report.analyses import data_summary

    with_endpoint = outcomes.courses[outcomes.courses["category"].notna()]
    summary = data_summary(sample, with_endpoint)
    assert summary.sessions_by_route["route"].astype(str).tolist() == ["im", "intranasal", "iv", "sublingual"]
    assert (summary.sessions_by_route["sessions"] > 0).all()
    assert summary.assessments_by_instrument["instrument"].astype(str).tolist() == ["GAD-7", "MADRS", "PHQ-9"]
    assert sample.instruments() == list(as_text(sample.assessments)["instrument"].value_counts().index)
    with_madrs = sample.assessments.loc[sample.assessments["instrument"] == "MADRS", "patient_id"]
    no_madrs = sample.subset(sample.patients.loc[~sample.patients["patient_id"].isin(with_madrs), "patient_id"])
    assert "MADRS" in set(no_madrs.assessments["instrument"].cat.categories)  # kept as a category ...
    assert "MADRS" not in no_madrs.instruments()                            # ... but not listed


def test_models_see_the_values_present_not_every_category(sample):
    """A category no row has is not a factor level (it would be a column of zeros)."""
    from analysis.response import logistic
    from analysis.survival import cox

    site_a = sample.subset(sample.patients.loc[sample.patients.site == "site_A", "patient_id"])
    out = analysis.derive_outcomes(site_a, "PHQ-9")
    courses = out.courses.assign(responder=out.courses["category"] == "responder")
    assert set(courses["sex"].cat.categories) - set(courses["sex"].dropna()) == {"unknown"}
    fit = logistic("responder ~ age + sex", courses, dropna=True)
    ref = logistic("responder ~ age + sex", as_text(courses), dropna=True)
    pd.testing.assert_frame_equal(fit.summary, ref.summary, check_exact=True)
    assert not any("unknown" in str(t) for t in fit.summary.index)
    hr = cox("age + C(route)", out.relapse, duration="time", event="event", dropna=True)
    hr_text = cox("age + C(route)", as_text(out.relapse), duration="time", event="event", dropna=True)
    pd.testing.assert_frame_equal(hr.summary, hr_text.summary, check_exact=True)
    assert not any("oral" in str(t) for t in hr.summary.index)


def test_clean_frame_reads_sorted_text_categories_as_text():
    from analysis._kernel.checks import is_sorted_text_categories
    from analysis._kernel.formula import clean_frame

    route = pd.Series(pd.Categorical(["iv", None, "im"], categories=["im", "iv", "oral"]))
    cleaned = clean_frame(pd.DataFrame({"route": route}))["route"]
    assert cleaned.dtype == object and cleaned.iloc[0] == "iv" and cleaned.iloc[2] == "im" and np.isnan(cleaned.iloc[1])
    # a user's own category order (or an ordered categorical) is kept: it sets the reference level
    custom = pd.Series(pd.Categorical(["iv", "im"], categories=["iv", "im"]))
    assert isinstance(clean_frame(pd.DataFrame({"r": custom}))["r"].dtype, pd.CategoricalDtype)
    assert not is_sorted_text_categories(pd.CategoricalDtype(["a", "b"], ordered=True))
    assert not is_sorted_text_categories(pd.CategoricalDtype([1, 2]))


def test_imputation_treats_sorted_text_categories_as_text(sample, outcomes):
    """Two values present of four categories: two-valued (logistic), as the text is."""
    from analysis.imputation import impute

    courses = outcomes.courses
    two = courses[courses["sex"].isin(["female", "male"])].reset_index(drop=True)
    data = two[["age", "weight_kg", "baseline_score", "sex"]].assign(sex=two["sex"].where(two["age"] < 70))
    assert data["sex"].isna().any() and len(data["sex"].cat.categories) == 4
    imputed, imputed_text = impute(data, m=2, seed=3), impute(as_text(data), m=2, seed=3)
    assert imputed.methods == imputed_text.methods == {"sex": "logreg"}
    for a, b in zip(imputed.datasets, imputed_text.datasets):
        assert a["sex"].dtype == data["sex"].dtype
        assert a["sex"].astype(str).tolist() == b["sex"].astype(str).tolist()
    # a complete categorical predictor: dummies of the values present only
    predictor = courses[["age", "baseline_score", "sex"]].assign(age=courses["age"].where(courses["baseline_score"] < 20))
    a, b = impute(predictor, m=2, seed=1), impute(as_text(predictor), m=2, seed=1)
    for x, y in zip(a.datasets, b.datasets):
        np.testing.assert_array_equal(x["age"].to_numpy(), y["age"].to_numpy())


def test_survival_groups_code_a_missing_categorical_as_missing():
    from analysis.survival._common import Grouping

    g = Grouping.from_series(pd.Series(pd.Categorical(["b", None, "a"], categories=["a", "b"])), "x")
    assert g.codes.tolist() == [1, -1, 0] and g.levels == ["a", "b"]
