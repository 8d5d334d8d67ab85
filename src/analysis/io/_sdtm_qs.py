"""SDTM QS records to assessments: one total score per questionnaire administration.

A questionnaire administration is the QS records of one subject, one ``QSCAT`` and one
study day (and one ``VISITNUM`` when present). Its score is the record that is its total:
the record whose ``QSTESTCD`` is the category's total code in the bundled map
(``sdtm_qs_totals.toml``, extended by ``total_codes``), or else whose ``QSTEST`` ends in
"Total Score" (ignoring case). Without a total record the item records become ``item_1`` ..
``item_k`` (numbered in the order of their ``QSTESTCD`` within the category) and the
conversion sums them by the instrument's rule. Every record is accounted for: used as the
total, used as an item, or dropped with its reason.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from importlib import resources

import numpy as np
import pandas as pd

from ..instruments import InstrumentRegistry, default_registry, normalise_instrument_name
from ..problems import ValidationReport
from ._extract import RowAccount
from ._sdtm_files import DomainTable, numbers

__all__ = ["bundled_total_codes", "qs_assessments"]


@functools.cache
def _bundled() -> dict[str, dict[str, str]]:
    text = resources.files("analysis.io").joinpath("sdtm_qs_totals.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)["totals"]


def bundled_total_codes() -> dict[str, str]:
    """The bundled map of ``QSCAT`` to the ``QSTESTCD`` of its total record.

    Examples
    --------
    >>> from analysis.io._sdtm_qs import bundled_total_codes
    >>> bundled_total_codes()["MADRS"]
    'MADRS111'
    """
    return {cat: entry["code"] for cat, entry in _bundled().items()}


def _total_code_map(extra: Mapping[str, str] | None) -> dict[str, str]:
    codes = {normalise_instrument_name(cat): code.upper() for cat, code in bundled_total_codes().items()}
    codes.update({normalise_instrument_name(cat): str(code).upper() for cat, code in (extra or {}).items()})
    return codes


def qs_assessments(table: DomainTable, keys: pd.Series, day: pd.Series, report: ValidationReport, *,
                   total_codes: Mapping[str, str] | None = None,
                   registry: InstrumentRegistry | None = None
                   ) -> tuple[pd.DataFrame, list[RowAccount], np.ndarray]:
    """Assessments (``source_key, day, instrument, score[, item_1..], source_ref``) from QS.

    ``keys`` and ``day`` are aligned with ``table.frame`` (the subject's key and the record's
    study day, NaN where it could not be placed: those records are reported by the caller).
    Problems (a total without a value, two totals in one administration, a code-matched
    record that is not a total) go to ``report``. Also returns which records were used.

    The accounts list only the records that do not carry an assessment's ``source_ref``
    (the conversion accounts for those, as used or as dropped by its own checks).
    """
    registry = registry or default_registry()
    f = table.frame
    file = table.file
    n = len(f)
    accounts: list[RowAccount] = []
    cat = f["QSCAT"].astype("string") if "QSCAT" in f else pd.Series(pd.NA, index=f.index, dtype="string")
    testcd = f["QSTESTCD"].astype("string").str.upper() if "QSTESTCD" in f else pd.Series(pd.NA, index=f.index,
                                                                                            dtype="string")
    test = f["QSTEST"].astype("string") if "QSTEST" in f else pd.Series(pd.NA, index=f.index, dtype="string")
    value = numbers(table, "QSSTRESN", report, "a number (the standardised numeric result)")
    for fallback in ("QSSTRESC", "QSORRES"):
        if fallback in f:
            value = value.fillna(pd.to_numeric(f[fallback], errors="coerce").astype(float))
    status = f["QSSTAT"].astype("string").str.upper() if "QSSTAT" in f else pd.Series(pd.NA, index=f.index,
                                                                                       dtype="string")

    refs = table.refs
    not_done = (status == "NOT DONE").fillna(False).to_numpy()
    no_cat = cat.isna().to_numpy()
    report.add_rows(file, "QSCAT", np.flatnonzero(no_cat & ~not_done), None,
                    "required value is missing: QSCAT names the questionnaire", code="sdtm_missing")
    unplaced = day.isna().to_numpy()
    if not_done.any():
        accounts.append(RowAccount(file, refs[not_done].tolist(), "dropped", None,
                                   "QSSTAT is NOT DONE: the question was not asked or not answered."))
    no_code = testcd.isna().to_numpy()
    report.add_rows(file, "QSTESTCD", np.flatnonzero(no_code & ~not_done & ~no_cat), None,
                    "required value is missing: QSTESTCD names the question", code="sdtm_missing")
    live = ~not_done & ~no_cat & ~no_code & ~unplaced & keys.notna().to_numpy()

    code_map = _total_code_map(total_codes)
    cat_key = cat.map(lambda c: normalise_instrument_name(c) if isinstance(c, str) else pd.NA)
    by_code = (testcd == cat_key.map(code_map)).fillna(False).to_numpy()
    by_name = test.str.strip().str.casefold().str.endswith("total score").fillna(False).to_numpy()
    says_total = test.str.casefold().str.contains("total").fillna(True).to_numpy()
    wrong_code = live & by_code & ~says_total
    report.add_rows(file, "QSTEST", np.flatnonzero(wrong_code), test.iloc[np.flatnonzero(wrong_code)],
                    "QSTESTCD is the total code of this QSCAT in the total-code map, but QSTEST does not name a "
                    "total score; check the map (total_codes=) or the record", code="sdtm_total_code_mismatch")
    is_total = live & (by_code | by_name) & ~wrong_code
    no_value = np.flatnonzero(is_total & np.isnan(value.to_numpy()))
    report.add_rows(file, "QSSTRESN", no_value, f["QSSTRESN"].iloc[no_value] if "QSSTRESN" in f else None,
                    "the total score record has no numeric result (QSSTRESN, QSSTRESC or QSORRES)",
                    code="sdtm_missing")

    visit = (numbers(table, "VISITNUM", report, "a visit number") if "VISITNUM" in f
             else pd.Series(np.nan, index=f.index)).fillna(-np.inf)
    frame = pd.DataFrame({"key": keys.to_numpy(), "cat": cat.to_numpy(), "day": day.to_numpy(dtype=float),
                          "visit": visit.to_numpy(dtype=float), "pos": np.arange(n), "total": is_total,
                          "testcd": testcd.to_numpy(), "value": value.to_numpy(dtype=float)})[live]
    frame["group"] = frame.groupby(["key", "cat", "day", "visit"], sort=False, dropna=False).ngroup()
    n_totals = frame.groupby("group")["total"].transform("sum").to_numpy()
    doubled = frame.loc[frame["total"].to_numpy() & (n_totals > 1), "pos"].to_numpy()
    report.add_rows(file, "QSTESTCD", doubled, testcd.iloc[doubled],
                    "more than one total score record for one questionnaire (same USUBJID, QSCAT, day and VISITNUM)",
                    code="sdtm_two_totals")

    totals = frame[frame["total"].to_numpy() & (n_totals == 1)]
    out = [pd.DataFrame({"source_key": totals["key"].to_numpy(), "day": totals["day"].to_numpy(),
                         "instrument": totals["cat"].to_numpy(), "score": totals["value"].to_numpy(),
                         "source_ref": table.source_refs(totals["pos"].to_numpy()).to_numpy()})]
    used = np.zeros(n, dtype=bool)
    used[totals["pos"].to_numpy()] = True
    items_beside_total = frame[~frame["total"].to_numpy() & (n_totals >= 1)]
    if len(items_beside_total):
        accounts.append(RowAccount(file, refs[items_beside_total["pos"].to_numpy()].tolist(), "dropped", None,
                                   "Item record of a questionnaire whose total score record is used instead."))
    items = frame[n_totals == 0]
    if len(items):
        out.append(_summed_items(items, table, report, registry, accounts, used))
    return pd.concat(out, ignore_index=True), accounts, used


def _summed_items(items: pd.DataFrame, table: DomainTable, report: ValidationReport,
                  registry: InstrumentRegistry, accounts: list[RowAccount], used: np.ndarray) -> pd.DataFrame:
    """Administrations without a total: items numbered by ``QSTESTCD`` order within the category."""
    file = table.file
    rows = []
    others: list[str] = []
    for cat, block in items.groupby("cat", sort=True):
        codes = sorted(block["testcd"].dropna().unique())
        inst = registry.find(str(cat))
        if inst is not None and inst.n_items is not None and len(codes) != inst.n_items:
            report.add_rows(file, "QSTESTCD", block["pos"].to_numpy()[:1], [", ".join(codes)],
                            f"QSCAT {cat!r} has no total score record and {len(codes)} item codes, but "
                            f"{inst.name} has {inst.n_items} items; add the total record or its code "
                            "(total_codes=)", code="sdtm_item_count")
            continue
        number = {code: i + 1 for i, code in enumerate(codes)}
        for _, adm in block.groupby("group", sort=False):
            row = {"source_key": adm["key"].iloc[0], "day": adm["day"].iloc[0], "instrument": cat,
                   "score": np.nan, "source_ref": f"{file}:{table.refs[adm['pos'].iloc[0]]}"}
            for code, val in zip(adm["testcd"], adm["value"]):
                row[f"item_{number[code]}"] = val
            rows.append(row)
            used[adm["pos"].to_numpy()] = True
            others.extend(table.refs[adm["pos"].to_numpy()[1:]].tolist())
    if others:  # the first item record carries the assessment's source_ref
        accounts.append(RowAccount(file, others, "used", "assessments", None))
    return pd.DataFrame(rows)
