"""SUPP-- datasets: supplemental qualifiers merged onto their parent records.

A SUPP-- record names its parent by ``RDOMAIN``, ``USUBJID`` and, unless it qualifies the
whole subject, ``IDVAR``/``IDVARVAL`` (for example ``EXSEQ`` = ``3``). Its ``QVAL`` becomes a
column named after ``QNAM`` (lower case) on the parent record. A record whose parent cannot
be found, or that gives a second value to the same qualifier of one parent, is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problems import ValidationReport
from ._sdtm_files import DomainTable

__all__ = ["merge_supp"]


def _as_key(values: pd.Series) -> pd.Series:
    """Identifying values as text without a float's trailing ``.0`` (``EXSEQ`` 3.0 is ``"3"``)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.map(lambda v: pd.NA if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return values.astype("string").str.strip().str.replace(r"\.0$", "", regex=True)


def merge_supp(parent: DomainTable, supp: DomainTable, report: ValidationReport) -> np.ndarray:
    """Add the qualifiers of ``supp`` to ``parent.frame`` as columns; return, for each supp
    record, the position of its parent record (-1 when it has none, which is reported)."""
    s = supp.frame
    needed = [c for c in ("USUBJID", "QNAM", "QVAL") if c not in s]
    if needed:
        report.add_table_problem(supp.file, f"required column is missing: {', '.join(needed)} (columns present: "
                                 f"{', '.join(s.columns)})", file=supp.file, code="sdtm_missing_column")
        return np.full(len(s), -1)
    p = parent.frame
    idvar = s["IDVAR"].astype("string").str.upper() if "IDVAR" in s else pd.Series(pd.NA, index=s.index,
                                                                                    dtype="string")
    idval = _as_key(s["IDVARVAL"]) if "IDVARVAL" in s else pd.Series(pd.NA, index=s.index, dtype="string")
    positions = np.full(len(s), -1)
    parent_subject = _as_key(p["USUBJID"]) if "USUBJID" in p else pd.Series(pd.NA, index=p.index, dtype="string")
    subject = _as_key(s["USUBJID"])
    for var in idvar.dropna().unique():
        if var not in p:
            rows = np.flatnonzero((idvar == var).fillna(False).to_numpy())
            report.add_rows(supp.file, "IDVAR", rows, idvar.iloc[rows],
                            f"IDVAR names a variable that {parent.file} does not have", code="sdtm_supp_parent")
    for var, block in s.groupby(idvar.fillna(""), sort=False):
        rows = block.index.to_numpy()
        if var and var not in p:
            continue
        left = pd.DataFrame({"s": subject.iloc[rows].to_numpy(),
                             "v": idval.iloc[rows].to_numpy() if var else "", "supp_pos": rows})
        right = pd.DataFrame({"s": parent_subject.to_numpy(), "v": _as_key(p[var]).to_numpy() if var else "",
                              "parent_pos": np.arange(len(p))})
        if not var:  # a subject-level qualifier: the subject's first record (DM has one per subject)
            right = right.drop_duplicates("s")
        else:
            right = right.drop_duplicates(["s", "v"])
        merged = left.merge(right, on=["s", "v"], how="left")
        positions[merged["supp_pos"].to_numpy()] = merged["parent_pos"].fillna(-1).astype(int).to_numpy()
    orphan = np.flatnonzero(positions < 0)
    orphan = orphan[~idvar.iloc[orphan].isin([v for v in idvar.dropna().unique() if v not in p]).to_numpy()]
    report.add_rows(supp.file, "USUBJID", orphan, s["USUBJID"].iloc[orphan],
                    f"no record in {parent.file} for this USUBJID (and IDVAR/IDVARVAL)", code="sdtm_supp_parent")
    found = positions >= 0
    qnam = s["QNAM"].astype("string").str.strip().str.lower()
    pairs = pd.DataFrame({"pos": positions[found], "q": qnam.to_numpy()[found]})
    doubled = np.flatnonzero(found)[pairs.duplicated(keep="first").to_numpy()]
    report.add_rows(supp.file, "QNAM", doubled, s["QNAM"].iloc[doubled],
                    "a second value for the same qualifier of one parent record", code="sdtm_supp_duplicate")
    for name in qnam.iloc[np.flatnonzero(found)].dropna().unique():
        rows = np.flatnonzero(found & (qnam == name).fillna(False).to_numpy())
        column = pd.Series(pd.NA, index=p.index, dtype="string")
        column.iloc[positions[rows]] = s["QVAL"].astype("string").iloc[rows].to_numpy()
        parent.frame[str(name)] = column
    return positions
