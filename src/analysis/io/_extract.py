"""What every source reader hands to the one conversion.

A reader (REDCap, SDTM, OMOP, mapped export) only *extracts*: it reads its
source into four plain tables and accounts for the rows it did not use.
Everything else -- the index day, study days, vocabularies, age top-coding,
pseudonyms, the anonymisation guard, validation and the log -- happens once,
in :func:`analysis.io._convert.to_dataset`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["RowAccount", "SourceExtract"]


@dataclass
class RowAccount:
    """The fate of one source row, or of a group of rows with the same fate.

    Parameters
    ----------
    table : str
        Source file or table name, e.g. ``"qs.xpt"``, ``"drug_exposure"``,
        ``"records.csv"``.
    rows : list of str
        Row references: file line numbers (``"12"``) or primary keys
        (``"drug_exposure_id=845"``).
    fate : str
        ``"used"`` or ``"dropped"``.
    used_as : str or None
        ``"patients"``, ``"sessions"``, ``"assessments"`` or ``"medications"``
        when used.
    reason : str or None
        Why the rows were dropped, one plain sentence (when dropped).

    Examples
    --------
    >>> RowAccount("records.csv", ["4", "5"], "dropped", None, "No session date.").fate
    'dropped'
    """

    table: str
    rows: list[str]
    fate: str
    used_as: str | None
    reason: str | None


@dataclass
class SourceExtract:
    """A source read into four plain tables, before conversion to format v1.

    Parameters
    ----------
    source : str
        ``"redcap"``, ``"sdtm"``, ``"omop"`` or ``"mapped"``.
    patients : pandas.DataFrame
        ``source_key`` (str) and any of ``site``, ``age``, ``sex``,
        ``diagnosis``, ``birth_year``, ``index_date``, ``index_day``.
    sessions : pandas.DataFrame
        ``source_key``, ``date`` (datetime64) or ``day`` (float, already a
        study-day offset), ``drug``, ``route``, ``dose``, ``dose_unit``,
        ``source_ref``.
    assessments : pandas.DataFrame
        ``source_key``, ``date`` or ``day``, ``instrument``, ``score`` (float;
        or NaN with item columns ``item_1`` .. ``item_k``), ``source_ref``.
    medications : pandas.DataFrame
        ``source_key``, ``drug``, ``start_date``/``end_date`` or
        ``start_day``/``end_day``, ``source_ref``.
    accounts : list of RowAccount
        Rows dropped while extracting (may also list used ones; the
        conversion completes the set).
    identifiers_dropped : list of str
        Source column names read but not used because identifying.

    Notes
    -----
    ``drug``, ``route`` and ``instrument`` hold raw source values or coded
    values written ``"RxNorm:6130"``, ``"SNOMED:47625008"``,
    ``"LOINC:44261-6"``. ``source_ref`` is ``"<table>:<row>"``. ``day``
    columns follow format v1's convention (a difference of dates: the
    reference day is 0, the day before is -1).

    Examples
    --------
    >>> import pandas as pd
    >>> empty = pd.DataFrame()
    >>> SourceExtract("mapped", pd.DataFrame({"source_key": ["A"]}), empty, empty, empty, []).source
    'mapped'
    """

    source: str
    patients: pd.DataFrame
    sessions: pd.DataFrame
    assessments: pd.DataFrame
    medications: pd.DataFrame
    accounts: list[RowAccount]
    identifiers_dropped: list[str] = field(default_factory=list)
