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

from ._convert import ImportedDataset, ImportProblemsError, to_dataset
from ._extract import RowAccount, SourceExtract
from .log import ImportLog
from .mapped import read_mapped
from .mapping import Mapping, MappingError, read_mapping
from .redcap import read_redcap
from .omop import read_omop
from .sdtm import read_sdtm
from .vocabulary import Vocabulary, default_vocabulary

__all__ = [
    "ImportLog", "ImportProblemsError", "ImportedDataset", "Mapping", "MappingError", "RowAccount", "SourceExtract",
    "Vocabulary", "default_vocabulary", "read_mapped", "read_mapping", "read_omop", "read_redcap", "read_sdtm", "to_dataset",
]
