"""Real data in: REDCap projects, clinic and EHR exports through a mapping file (and, from
their own modules, CDISC SDTM and OMOP CDM), converted to data format v1.

Every reader extracts its source into a :class:`~analysis.io._extract.SourceExtract`; one
conversion (:func:`analysis.io._convert.to_dataset`) turns dates into study days, maps
values through the vocabulary (:mod:`analysis.io.vocabulary`), guards privacy, validates,
writes the dataset folder and the import log (:class:`~analysis.io.log.ImportLog`) that
accounts for every source row. ``docs/import.md`` explains the mapping file.

Examples
--------
>>> from analysis.io import default_vocabulary
>>> default_vocabulary().lookup("route", "IV infusion").value
'iv'
"""

from .._lazy import on_first_use

__all__ = [
    "ImportLog", "ImportProblemsError", "ImportedDataset", "Mapping", "MappingError", "RowAccount", "SourceExtract",
    "Vocabulary", "default_vocabulary", "read_mapped", "read_mapping", "read_omop", "read_redcap", "read_sdtm", "to_dataset",
]

#: where each public name lives; imported on first use (PEP 562), so that building the
#: command line (``analysis.io.cli``) does not import pandas and every reader
_LAZY = {
    "ImportedDataset": "._convert", "ImportProblemsError": "._convert", "to_dataset": "._convert",
    "RowAccount": "._extract", "SourceExtract": "._extract", "ImportLog": ".log", "read_mapped": ".mapped",
    "Mapping": ".mapping", "MappingError": ".mapping", "read_mapping": ".mapping", "read_redcap": ".redcap",
    "read_omop": ".omop", "read_sdtm": ".sdtm", "Vocabulary": ".vocabulary", "default_vocabulary": ".vocabulary",
}

__getattr__, __dir__ = on_first_use(__name__, _LAZY)
