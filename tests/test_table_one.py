"""Table 1 and standardised mean differences, against hand computations of the published formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import table_one
from analysis.adjuncts import smd


@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    n = 200
    g = rng.integers(0, 2, n)
    return pd.DataFrame({
        "g": np.where(g == 1, "treated", "control"),
        "age": rng.normal(45 + 5 * g, 10),
        "ptsd": rng.random(n) < 0.2 + 0.2 * g,
        "route": rng.choice(["iv", "im", "intranasal"], n, p=[0.6, 0.25, 0.15]),
        "w": rng.uniform(0.5, 3, n),
    })


def test_continuous_smd_is_the_pooled_sd_formula(data):
    a = data.loc[data.g == "treated", "age"]
    b = data.loc[data.g == "control", "age"]
    expected = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    got = smd(data["age"].to_numpy(), data["g"].to_numpy(), "treated", "control")
    assert got == pytest.approx(expected, rel=1e-12)


def test_binary_smd(data):
    p1 = data.loc[data.g == "treated", "ptsd"].mean()
    p0 = data.loc[data.g == "control", "ptsd"].mean()
    expected = (p1 - p0) / np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    got = smd(data["ptsd"].to_numpy(float), data["g"].to_numpy(), "treated", "control", kind="binary")
    assert got == pytest.approx(expected, rel=1e-12)


def test_categorical_smd_is_yang_dalton(data):
    levels = ["im", "intranasal", "iv"]
    ind = np.column_stack([(data.route == lv).to_numpy(float) for lv in levels])
    t = ind[data.g == "treated"].mean(axis=0)[1:]
    c = ind[data.g == "control"].mean(axis=0)[1:]
    s = ((np.diag(t) - np.outer(t, t)) + (np.diag(c) - np.outer(c, c))) / 2
    expected = np.sqrt((t - c) @ np.linalg.inv(s) @ (t - c))
    got = smd(ind, data["g"].to_numpy(), "treated", "control", kind="categorical")
    assert got == pytest.approx(expected, rel=1e-10)


def test_weighted_smd_uses_weighted_means_and_unweighted_denominator(data):
    w = data["w"].to_numpy()
    t, c = (data.g == "treated").to_numpy(), (data.g == "control").to_numpy()
    x = data["age"].to_numpy()
    num = np.average(x[t], weights=w[t]) - np.average(x[c], weights=w[c])
    den = np.sqrt((x[t].var(ddof=1) + x[c].var(ddof=1)) / 2)
    got = smd(x, data["g"].to_numpy(), "treated", "control", w)
    assert got == pytest.approx(num / den, rel=1e-12)


def test_table_cells(data):
    t1 = table_one(data, "g", ["age", "ptsd", "route"], weights="w")
    table = t1.table.set_index(["characteristic", "level"])
    treated = data[data.g == "treated"]
    assert table.loc[("n", ""), "treated"] == f"{data.loc[data.g == 'treated', 'w'].sum():.0f}"
    assert table.loc[("", "iv"), "overall"].endswith(f"({100 * np.average(data.route == 'iv', weights=data.w):.1f}%)")
    unweighted = table_one(data, "g", ["age"]).table.set_index("characteristic")
    assert unweighted.loc["age", "treated"] == f"{treated.age.mean():.1f} ({treated.age.std():.1f})"
    assert {"smd", "smd_weighted"} <= set(t1.table.columns)
    assert "| characteristic | level |" in t1.to_markdown()
    assert t1.to_latex().startswith("\\begin{tabular}") and "\\%" in t1.to_latex()


def test_flags_carry_their_no_count_for_suppression(data):
    counts = table_one(data, "g", ["ptsd"]).counts
    rows = counts[counts.characteristic == "ptsd"].set_index("level")
    assert rows.loc["yes", "overall"] + rows.loc["no", "overall"] == len(data)
    assert not rows.loc["no", "shown"]


def test_missing_columns_are_named(data):
    with pytest.raises(KeyError, match="weight_kg"):
        table_one(data, "g", ["weight_kg"])
