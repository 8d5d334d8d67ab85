"""The typed parameters of the cohort report, checked before any work starts.

The ``parameters`` cell of ``notebooks/cohort_report.ipynb`` holds the same names with the
same defaults (a test keeps them identical). Unknown names, wrong types and impossible
values are errors that say which parameter and what was expected.

Text stands for a value of another type where a command line gives text: papermill's
``-p sites '["site_A"]'`` (papermill passes anything that is not a number or a boolean as a
string), ``-r seed 7``, or ``ketamine-outcomes report -p sites site_A,site_B``. Lists are
JSON or comma-separated, ``definitions`` is a JSON object, numbers are their digits; a whole
number also stands for a text parameter (papermill turns ``-p name 2026`` into one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["FIGURE_FORMATS", "ReportParameters", "ParameterError", "parse_cli_value"]

#: the files a cohort report can write for each figure
FIGURE_FORMATS = ("png", "svg", "pdf")


class ParameterError(ValueError):
    """Bad report parameters; the message lists every problem, one per line."""


class ReportParameters(BaseModel):
    """Parameters of the cohort report.

    Examples
    --------
    >>> import analysis
    >>> from analysis.report import ReportParameters
    >>> ReportParameters(name="site_A", sites=["site_A"]).min_cell_count
    11
    >>> ReportParameters().data_path() == analysis.sample_path()     # empty data: the bundled sample
    True
    >>> ReportParameters.checked({"min_cel_count": 5, "conf_level": 1.5})
    Traceback (most recent call last):
    ...
    analysis.report.parameters.ParameterError: report parameters: conf_level: must be at least 0.5 and below 1, got 1.5; min_cel_count: unknown parameter; known: data, name, ...
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _text_from_command_lines(cls, values: Any) -> Any:
        """Text given for a list, dict or number parameter is parsed (see the module docstring)."""
        if not isinstance(values, Mapping):
            return values
        parsed, problems = {}, []
        for name, value in values.items():
            try:
                parsed[name] = _from_text(name, value)
            except ParameterError as exc:
                problems.append(str(exc).removeprefix("report parameters: "))
        if problems:
            raise ValueError("; ".join(problems))
        return parsed

    data: str = Field("", description="Dataset folder; empty means the bundled sample (data/sample). "
                      "$NAME or ${NAME} parts are taken from the environment.")
    name: str = Field("sample", description="Report name: the output folder under reports/ and the index entry.")
    title: str = Field("Cohort report", description="Title shown at the top of the report.")
    instrument: str = Field("PHQ-9", description="Instrument every outcome is defined on.")
    second_instrument: str = Field(
        "auto", description="Instrument for the sensitivity analysis: a name, 'auto' (the most recorded other "
        "depression instrument, if any) or '' for none.")
    sites: list[str] = Field(default_factory=list, description="Keep patients of these sites (empty: all).")
    routes: list[str] = Field(default_factory=list, description="Keep patients whose first session used one of these routes (empty: all).")
    period_column: str = Field("period", description="Patients column that holds the period (e.g. year of the index date).")
    periods: list[str] = Field(default_factory=list, description="Keep patients whose period is one of these (empty: all).")
    definitions: dict[str, Any] = Field(default_factory=dict, description="Outcome definitions to change (docs/outcomes.md).")
    min_cell_count: int = Field(11, description="Counts from 1 to min_cell_count - 1 are suppressed in every output.")
    conf_level: float = Field(0.95, description="Confidence level of every interval.")
    seed: int = Field(2026, description="Seed for anything random (bootstrap intervals).")
    output_dir: str = Field("", description="Folder for the tables (CSV) and figures the report writes; empty: write nothing.")
    figure_formats: list[str] = Field(
        default_factory=lambda: ["png"], description="Files written for each figure under output_dir/figures: "
        "any of png (150 dpi), svg and pdf (each format is one more drawing of every figure; the HTML report "
        "embeds PNG either way).")
    html_path: str = Field(
        "", description="Where the notebook's last cell writes the HTML report, for plain papermill runs "
        "(needs papermill's --inject-paths); empty: none (ketamine-outcomes report writes it itself).")

    @field_validator("data")
    @classmethod
    def _environment_in_data(cls, v: str) -> str:
        # the renderer hands the kernel "$KO_REPORT_DATA", so that no executed notebook records
        # the machine's path of the data
        if "$" not in v:
            return v
        import os
        import re

        missing = [m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", v)
                   if (m.group(1) or m.group(2)) not in os.environ]
        if missing:
            raise ValueError(f"environment variable {missing[0]} is not set (in {v!r})")
        return os.path.expandvars(v)

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, v: str) -> str:
        if not v or any(c in v for c in '/\\:*?"<>|') or v in {".", ".."}:
            raise ValueError(f"must be a plain folder name (letters, digits, - and _), got {v!r}")
        return v

    @field_validator("instrument")
    @classmethod
    def _known_instrument(cls, v: str) -> str:
        from ..instruments import get_instrument

        try:
            return get_instrument(v).name
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None

    @field_validator("second_instrument")
    @classmethod
    def _known_second(cls, v: str) -> str:
        if v in ("", "auto"):
            return v
        return cls._known_instrument(v)

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, v: list[str]) -> list[str]:
        from ..schema import ROUTES

        bad = [r for r in v if r not in ROUTES]
        if bad:
            raise ValueError(f"unknown route(s) {bad}; expected some of {list(ROUTES)}")
        return v

    @field_validator("min_cell_count")
    @classmethod
    def _k_positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be at least 1 (1 turns suppression off), got {v}")
        return v

    @field_validator("figure_formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f not in FIGURE_FORMATS]
        if unknown:
            raise ValueError(f"unknown format {unknown[0]!r}; expected some of {', '.join(FIGURE_FORMATS)}")
        return list(dict.fromkeys(v))

    @field_validator("conf_level")
    @classmethod
    def _level(cls, v: float) -> float:
        if not 0.5 <= v < 1:
            raise ValueError(f"must be at least 0.5 and below 1, got {v}")
        return v

    @field_validator("definitions")
    @classmethod
    def _definitions(cls, v: dict[str, Any]) -> dict[str, Any]:
        from ..outcomes.definitions import Definitions

        try:
            Definitions.from_kwargs(**v)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _data_exists(self) -> ReportParameters:
        if self.data and not Path(self.data).is_dir():
            raise ValueError(f"data: folder does not exist: {self.data}")
        return self

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def checked(cls, values: Mapping[str, Any]) -> ReportParameters:
        """Build from a mapping, turning every validation problem into one clear ParameterError."""
        try:
            return cls(**dict(values))
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                if not where:  # a problem of the whole mapping: its message names the parameters
                    lines.append(message)
                    continue
                if err["type"] == "extra_forbidden":
                    message = f"unknown parameter; known: {', '.join(cls.model_fields)}"
                elif err["type"].endswith("_type"):
                    message = f"{message} (got {err['input']!r})"
                lines.append(f"{where}: {message}")
            raise ParameterError("report parameters: " + "; ".join(lines)) from None

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> ReportParameters:
        """Pick the parameters out of a notebook's globals and check them."""
        return cls.checked({k: namespace[k] for k in cls.model_fields if k in namespace})

    def data_path(self) -> Path:
        """The dataset folder (the bundled sample when ``data`` is empty)."""
        if self.data:
            return Path(self.data)
        from ..resources import sample_path

        return sample_path()

    def literals(self) -> dict[str, Any]:
        """The parameters as plain literals (for papermill and provenance)."""
        return self.model_dump()


def parse_cli_value(name: str, text: str) -> Any:
    """Turn ``-p NAME VALUE`` text into the parameter's type: JSON lists or comma-separated text
    for list parameters, a JSON object for ``definitions``, numbers for number parameters.

    Examples
    --------
    >>> from analysis.report.parameters import parse_cli_value
    >>> parse_cli_value("sites", '["site_A"]'), parse_cli_value("sites", "site_A, site_B")
    (['site_A'], ['site_A', 'site_B'])
    >>> parse_cli_value("definitions", '{"relapse_confirmations": 1}'), parse_cli_value("conf_level", "0.9")
    ({'relapse_confirmations': 1}, 0.9)
    >>> parse_cli_value("seed", "seven")
    Traceback (most recent call last):
    ...
    analysis.report.parameters.ParameterError: report parameters: seed: expected a whole number, got 'seven'
    """
    import json

    field = ReportParameters.model_fields.get(name)
    if field is None:
        return text  # the model reports the unknown name
    annotation = str(field.annotation)
    if annotation.startswith("list"):
        if text.strip().startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ParameterError(f"report parameters: {name}: expected a JSON list or comma-separated text, "
                                     f"got {text!r} ({exc.msg})") from None
        return [t.strip() for t in text.split(",") if t.strip()]
    if annotation.startswith("dict"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"report parameters: {name}: expected a JSON object, got {text!r} ({exc.msg})") from None
    if field.annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ParameterError(f"report parameters: {name}: expected a whole number, got {text!r}") from None
    if field.annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ParameterError(f"report parameters: {name}: expected a number, got {text!r}") from None
    return text


def _from_text(name: str, value: Any) -> Any:
    """``value`` in its parameter's type when it is text standing for a list, dict or number, or
    a whole number given for a text parameter; anything else unchanged (the model checks it)."""
    field = ReportParameters.model_fields.get(name)
    if field is None:
        return value
    if isinstance(value, str) and field.annotation is not str:
        return parse_cli_value(name, value)
    if field.annotation is str and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value
