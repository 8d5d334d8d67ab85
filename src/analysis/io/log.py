"""The import log: every source row used (and as what) or dropped (and why), and how.

``import_log.json`` (for programs) and ``import_log.md`` (for people) are written beside the
dataset. They hold the source and its tables with their row counts, the index rule, every
row's fate grouped by table, fate, use and reason (row references compressed into ranges:
``2-501``), each value mapped by a vocabulary rule (a warning) or unknown (with a suggested
mapping line), the identifying columns dropped (by name only), whether keys were re-keyed to
pseudonyms, and the problems found.

Examples
--------
>>> from analysis.io.log import ImportLog
>>> from analysis.io._extract import RowAccount
>>> log = ImportLog("mapped")
>>> log.add_accounts([RowAccount("visits.csv", ["2", "3", "4"], "used", "sessions", None),
...                   RowAccount("visits.csv", ["5"], "dropped", None, "No visit date.")])
>>> log.counts()
{'visits.csv': {'rows': 4, 'used': 3, 'dropped': 1}}
>>> print(log.to_markdown().splitlines()[0])
# Import log: mapped
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ._extract import RowAccount

__all__ = ["ImportLog", "VocabularyNote", "compress_rows"]



@dataclass
class VocabularyNote:
    """One distinct source value mapped by a rule, or unknown."""

    kind: str
    value: str
    mapped_to: str | None
    how: str
    rule: str | None
    count: int
    rows: list[str]
    suggestion: str | None = None
    note: str | None = None

    def message(self) -> str:
        where = ", ".join(self.rows[:3]) + (" ..." if len(self.rows) > 3 else "")
        if self.how == "rule":
            extra = f" ({self.note})" if self.note else ""
            return (f"{self.kind} {self.value!r} mapped to {self.mapped_to!r} by the {self.rule!r} rule{extra}, "
                    f"{self.count} row(s) ({where}); add an exact entry to the mapping file to confirm it: "
                    f'[vocabulary.{self.kind}] "{self.value}" = "{self.mapped_to}"')
        return (f"unknown {self.kind} {self.value!r}, {self.count} row(s) ({where}); add a line to the mapping "
                f"file, e.g. {self.suggestion}")


def compress_rows(rows: Iterable[str]) -> list[str]:
    """Row references with runs of consecutive numbers written as ranges (also after a key's name).

    Examples
    --------
    >>> from analysis.io.log import compress_rows
    >>> compress_rows(["2", "3", "4", "7", "person_id=9", "person_id=10", "person_id=12"])
    ['2-4', '7', 'person_id=9-10', 'person_id=12']
    """
    refs = pa.array(list(dict.fromkeys(map(str, rows))), type=pa.large_string())
    if len(refs) == 0:
        return []
    # one vectorised pass, not a loop over rows; numbers of up to 18 digits (int64)
    parts = pc.extract_regex(refs, r"^(?P<p>.*?)(?P<n>\d{1,18})$")
    numbered = pc.fill_null(pc.is_valid(parts), False)
    others = [str(r) for r in pc.filter(refs, pc.invert(numbered)).to_pylist()]
    parts = pc.filter(parts, numbered)
    prefixes = pd.Series(pc.struct_field(parts, "p").to_numpy(zero_copy_only=False), dtype=object)
    numbers_all = pc.cast(pc.struct_field(parts, "n"), pa.int64()).to_numpy()
    out: list[str] = []
    codes, uniques = pd.factorize(prefixes)
    for k, prefix in enumerate(uniques):
        numbers = np.sort(numbers_all[codes == k])
        numbers = numbers[np.concatenate([[True], np.diff(numbers) != 0])]
        breaks = np.flatnonzero(np.diff(numbers) != 1)
        starts = np.concatenate([[0], breaks + 1])
        ends = np.concatenate([breaks, [len(numbers) - 1]])
        out += [f"{prefix}{numbers[a]}" if a == b else f"{prefix}{numbers[a]}-{numbers[b]}" for a, b in zip(starts, ends)]
    return out + sorted(others)


@dataclass
class ImportLog:
    """What an import read, used, dropped and mapped.

    Parameters
    ----------
    source : str
        ``"redcap"``, ``"sdtm"``, ``"omop"`` or ``"mapped"``.
    """

    source: str
    inputs: list[str] = field(default_factory=list)
    index_rule: str | None = None
    accounts: list[RowAccount] = field(default_factory=list)
    vocabulary: list[VocabularyNote] = field(default_factory=list)
    identifiers_dropped: list[str] = field(default_factory=list)
    rekeyed: bool = False
    rekey_reason: str | None = None
    key_map: str | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_errors: int = 0
    n_warnings: int = 0
    outputs: dict[str, int] = field(default_factory=dict)

    # --- recording ----------------------------------------------------------------------
    def add_accounts(self, accounts: Iterable[RowAccount]) -> None:
        """Add row accounts, merging those of the same table, fate, use and reason."""
        for acc in accounts:
            if acc.fate not in ("used", "dropped"):
                raise ValueError(f"row account for {acc.table}: fate must be 'used' or 'dropped', got {acc.fate!r}")
            if acc.fate == "dropped" and not acc.reason:
                raise ValueError(f"row account for {acc.table}: dropped rows need a reason")
            for mine in self.accounts:
                if (mine.table, mine.fate, mine.used_as, mine.reason) == (acc.table, acc.fate, acc.used_as, acc.reason):
                    mine.rows.extend(acc.rows)
                    break
            else:
                self.accounts.append(RowAccount(acc.table, list(acc.rows), acc.fate, acc.used_as, acc.reason))

    # --- reading ------------------------------------------------------------------------
    def rows_of(self, table: str) -> set[str]:
        """Every row reference of ``table`` in the log."""
        return {r for a in self.accounts if a.table == table for r in a.rows}

    def unaccounted(self, table: str, rows: Iterable[str]) -> list[str]:
        """The rows of ``table`` the log does not account for."""
        known = self.rows_of(table)
        return [r for r in rows if r not in known]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per source table: distinct rows, and how many were used (for anything) and dropped."""
        out: dict[str, dict[str, int]] = {}
        for table in dict.fromkeys(a.table for a in self.accounts):
            used = set().union(*(a.rows for a in self.accounts if a.table == table and a.fate == "used"))
            dropped = set().union(*(a.rows for a in self.accounts if a.table == table and a.fate == "dropped")) - used
            out[table] = {"rows": len(used) + len(dropped), "used": len(used), "dropped": len(dropped)}
        return out

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "inputs": self.inputs,
            "index_rule": self.index_rule,
            "tables": self.counts(),
            "accounts": [
                {"table": a.table, "fate": a.fate, "used_as": a.used_as, "reason": a.reason,
                 "count": len(set(a.rows)), "rows": compress_rows(a.rows)}
                for a in self.accounts
            ],
            "vocabulary": [
                {"kind": v.kind, "value": v.value, "mapped_to": v.mapped_to, "how": v.how, "rule": v.rule,
                 "count": v.count, "rows": v.rows[:20], "suggestion": v.suggestion, "note": v.note}
                for v in self.vocabulary
            ],
            "identifiers_dropped": self.identifiers_dropped,
            "pseudonyms": {"rekeyed": self.rekeyed, "reason": self.rekey_reason, "key_map": self.key_map},
            "notes": self.notes,
            "n_errors": self.n_errors,
            "n_warnings": self.n_warnings,
            "problems": self.problems,
            "outputs": self.outputs,
        }

    def to_json(self) -> str:
        """The log as JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self, _dict: dict | None = None) -> str:
        """The log as a Markdown document."""
        d = self.to_dict() if _dict is None else _dict
        lines = [f"# Import log: {self.source}", ""]
        if self.inputs:
            lines += ["Inputs: " + ", ".join(f"`{i}`" for i in self.inputs), ""]
        if self.index_rule:
            lines += [f"Index: {self.index_rule}.", ""]
        lines += ["## Source rows", "", "| table | rows | used | dropped |", "|---|---|---|---|"]
        lines += [f"| {t} | {c['rows']} | {c['used']} | {c['dropped']} |" for t, c in d["tables"].items()]
        lines += ["", "| table | fate | used as / reason | count | rows |", "|---|---|---|---|---|"]
        for a in d["accounts"]:
            rows = ", ".join(a["rows"][:10]) + (" ..." if len(a["rows"]) > 10 else "")
            lines.append(f"| {a['table']} | {a['fate']} | {a['used_as'] or a['reason']} | {a['count']} | {rows} |")
        if self.vocabulary:
            lines += ["", "## Values mapped by a rule or unknown", ""]
            lines += [f"- {v.message()}" for v in self.vocabulary]
        lines += ["", "## Privacy", ""]
        dropped = ", ".join(f"`{c}`" for c in self.identifiers_dropped) or "none"
        lines.append(f"- Identifying columns read but not used (dropped, never copied): {dropped}.")
        if self.rekeyed:
            kept = f"; key map written to `{self.key_map}`" if self.key_map else "; no key map written"
            lines.append(f"- Patient keys re-keyed to pseudonyms ({self.rekey_reason}){kept}.")
        else:
            lines.append("- Patient keys kept as given (they look like pseudonyms).")
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        lines += ["", f"## Problems: {self.n_errors} error(s), {self.n_warnings} warning(s)", ""]
        lines += [f"- {p}" for p in self.problems] or ["none"]
        if self.outputs:
            lines += ["", "## Written", ""] + [f"- {t}: {n} rows" for t, n in self.outputs.items()]
        return "\n".join(lines) + "\n"

    def write(self, folder: str | Path) -> list[Path]:
        """Write ``import_log.json`` and ``import_log.md`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / "import_log.json", folder / "import_log.md"]
        d = self.to_dict()  # once: compressing the rows of a large source takes a moment
        paths[0].write_text(json.dumps(d, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths[1].write_text(self.to_markdown(d), encoding="utf-8")
        return paths
