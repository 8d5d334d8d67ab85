"""ketamine-outcomes: outcome research on ketamine therapy for depression.

Load and validate anonymised exports of sessions and mood scores, derive the field's
outcomes, fit relapse-interval and responder models, and render cohort reports.

Examples
--------
>>> import analysis
>>> ds = analysis.load_dataset("data/sample")
>>> len(ds.patients)
500
>>> analysis.get_instrument("PHQ-9").remission_max
4
"""

from importlib.metadata import PackageNotFoundError, version

from ._kernel import ConvergenceWarning
from .dataset import Dataset, check_dataset, load_dataset, validate
from .instruments import Instrument, get_instrument, instrument_names, load_instrument_file, register_instrument
from .outcomes import Definitions, Outcomes, derive_outcomes
from .problems import DataValidationError, ValidationReport
from .resources import sample_path
from .simulation import Simulation, simulate
from ._table_one import TableOne, table_one

try:
    __version__ = version("ketamine-outcomes")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "ConvergenceWarning",
    "Dataset",
    "DataValidationError",
    "Definitions",
    "Outcomes",
    "derive_outcomes",
    "Instrument",
    "ValidationReport",
    "__version__",
    "check_dataset",
    "get_instrument",
    "instrument_names",
    "load_dataset",
    "load_instrument_file",
    "register_instrument",
    "sample_path",
    "Simulation",
    "simulate",
    "TableOne",
    "table_one",
    "validate",
]
