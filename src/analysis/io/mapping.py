"""The mapping file: how a clinic export or a REDCap project becomes format v1.

A TOML file, read with :mod:`tomllib` into a validated model (pydantic), names for each
format-v1 table where its rows are (a file, or a REDCap form and events), which source
column holds each field, constant values where the source has none, value maps, vocabulary
additions and instrument rules. A complete example with every key is in ``docs/import.md``.

Every error names the mapping file, the key (``sessions.dose_unit_value``) and the value,
and says what was expected.

Examples
--------
>>> from analysis.io.mapping import parse_mapping
>>> m = parse_mapping('''
... [sessions]
... key = "record_id"
... date = "infusion_date"
... route_value = "iv"
... dose = "dose_mg_kg"
... dose_unit_value = "mg/kg"
... ''', "map.toml")
>>> m.sessions.date, m.sessions.route_value
('infusion_date', 'iv')
>>> parse_mapping('[sessions]\\nkey = "id"\\ndate = "d"\\nroute = 3\\n', "map.toml")
Traceback (most recent call last):
...
analysis.io.mapping.MappingError: map.toml: key 'sessions.route': value 3: Input should be a valid string
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["Mapping", "MappingError", "read_mapping", "parse_mapping", "TableMap"]


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file, key and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableMap(_Strict):
    """Where the rows of one format-v1 table are, and which source column holds each field."""

    file: str | None = Field(None, description="mapped: the file (name) the rows come from")
    form: str | None = Field(None, description="REDCap: the form (repeating instrument) holding the rows")
    event: list[str] = Field(default_factory=list, description="REDCap: events holding the rows (default all)")
    key: str | None = Field(None, description="the patient key column (default [source].key)")
    when: dict[str, list[str]] = Field(default_factory=dict, description="column -> values a row must have")
    require: list[str] = Field(default_factory=list, description="columns a row of this table must fill")
    date: str | None = None
    day: str | None = None
    keep: dict[str, str] = Field(default_factory=dict, description="format v1 column -> source column, copied")

    @field_validator("event", "require", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("when", mode="before")
    @classmethod
    def _values_list(cls, value):
        if isinstance(value, dict):
            return {k: ([v] if isinstance(v, (str, int, float)) else v) for k, v in value.items()}
        return value

    @field_validator("when", mode="after")
    @classmethod
    def _values_text(cls, value):
        return {k: [str(v) for v in vs] for k, vs in value.items()}


class PatientsMap(TableMap):
    site: str | None = None
    site_value: str | None = None
    age: str | None = None
    sex: str | None = None
    diagnosis: str | None = None
    birth_year: str | None = None
    index_date: str | None = None


class SessionsMap(TableMap):
    drug: str | None = None
    drug_value: str | None = Field(None, description="the drug of every session when no column holds it")
    route: str | None = None
    route_value: str | None = None
    dose: str | None = None
    dose_unit: str | None = None
    dose_unit_value: str | None = None

    @model_validator(mode="after")
    def _route_and_unit(self):
        if self.route is None and self.route_value is None:
            raise ValueError("give route (a column) or route_value (one route for every session)")
        if self.dose is not None and self.dose_unit is None and self.dose_unit_value is None:
            raise ValueError("dose needs dose_unit (a column) or dose_unit_value (e.g. \"mg/kg\" or \"mg\")")
        return self


class AssessmentsMap(TableMap):
    instrument: str | None = None
    instrument_value: str | None = None
    score: str | None = None
    wide: dict[str, str] = Field(default_factory=dict, description="instrument -> its total-score column")
    items: dict[str, list[str]] = Field(default_factory=dict, description="instrument -> its item columns, in order")

    @model_validator(mode="after")
    def _some_score(self):
        if not self.wide and not self.items and self.score is None:
            raise ValueError("give wide (instrument = total column), items (instrument = [item columns]) or score")
        if self.score is not None and self.instrument is None and self.instrument_value is None:
            raise ValueError("score needs instrument (a column) or instrument_value")
        return self


class MedicationsMap(TableMap):
    drug: str | None = None
    drug_value: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    start_day: str | None = None
    end_day: str | None = None

    @model_validator(mode="after")
    def _drug_and_start(self):
        if self.drug is None and self.drug_value is None:
            raise ValueError("give drug (a column, or a REDCap checkbox field) or drug_value")
        if self.start_date is None and self.start_day is None and self.date is None and self.day is None:
            raise ValueError("give start_date or start_day (or date/day for a single-day record)")
        return self


class SourceMap(_Strict):
    key: str | None = Field(None, description="the patient key column of every table")
    date_format: str | None = Field(None, description="strftime pattern of the dates; default ISO 8601")
    index: Literal["first_session", "index_date"] = Field(
        "first_session", description="first_session, or index_date (the [patients] index_date column)")


class InstrumentRule(_Strict):
    max_missing_items: int = Field(ge=0)


class Mapping(_Strict):
    """A whole mapping file."""

    source: SourceMap = Field(default_factory=SourceMap)
    patients: PatientsMap | None = None
    sessions: SessionsMap
    assessments: list[AssessmentsMap] = Field(default_factory=list, description="one table, or several ([[assessments]])")
    medications: MedicationsMap | None = None
    values: dict[str, dict[str, str]] = Field(default_factory=dict, description="column -> {source value: value}")
    vocabulary: dict[Literal["route", "instrument", "drug"], dict[str, str]] = Field(default_factory=dict)
    instruments: dict[str, InstrumentRule] = Field(default_factory=dict)
    path: str = Field("", exclude=True)

    @field_validator("assessments", mode="before")
    @classmethod
    def _one_or_several(cls, value):
        return [value] if isinstance(value, dict) else value

    def sections(self) -> list[tuple[str, TableMap]]:
        """(format v1 table, its section) for every section of the file, in table order."""
        out: list[tuple[str, TableMap]] = []
        for name in ("patients", "sessions", "assessments", "medications"):
            value = getattr(self, name)
            out += [(name, v) for v in (value if isinstance(value, list) else [value]) if v is not None]
        return out

    def check_where(self, source: str) -> None:
        """Sections of a mapped export say ``file``; those of a REDCap project ``form`` and ``event``."""
        for table, tm in self.sections():
            if source == "redcap" and tm.file is not None:
                raise MappingError(f"{self.path}: key '{table}.file': value {tm.file!r}: a REDCap project's rows are "
                                   "chosen by form and event, not by file")
            if source == "mapped" and (tm.form is not None or tm.event):
                key = "form" if tm.form is not None else "event"
                raise MappingError(f"{self.path}: key '{table}.{key}': value {getattr(tm, key)!r}: form and event are "
                                   "for REDCap projects (ketamine-outcomes import redcap); a mapped export says file")

    def key_of(self, table: TableMap) -> str:
        key = table.key or self.source.key
        if key is None:
            raise MappingError(f"{self.path}: no patient key column: set [source].key or the table's key")
        return key


def _describe(error: dict) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    shown = "" if isinstance(value, dict) or value is None else f": value {value!r}"
    return f"key {loc!r}{shown}: {error['msg']}"


def parse_mapping(text: str, path: str | Path = "mapping") -> Mapping:
    """A mapping from TOML text; :class:`MappingError` naming ``path``, the key and value."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Mapping.model_validate({**data, "path": str(path)})
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise MappingError(f"{path}: {problems}") from None


def read_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from analysis.io.mapping import read_mapping
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.toml"
    >>> _ = p.write_text('[sessions]\\nkey = "id"\\ndate = "d"\\nroute_value = "iv"\\ncolour = "red"\\n')
    >>> read_mapping(p)
    Traceback (most recent call last):
    ...
    analysis.io.mapping.MappingError: .../map.toml: key 'sessions.colour': value 'red': Extra inputs are not permitted
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc}") from exc
    return parse_mapping(text, path)
