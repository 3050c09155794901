"""lstm-viz: see why recurrent networks forget.

Data flows one way: settings -> inputs -> models -> record (the one place that runs
backward) -> analysis -> tables, prose and figures -> pages. This package never imports
streamlit.
"""

from . import analysis, figures, prose, tables
from .analysis import DecayFit, decay_fit, gate_stats, recurrent_spectral_radii
from .inputs import INPUTS, make_input
from .models import ARCHS, INITS, build_model
from .record import DEFAULT_MAX_BYTES, Recording, estimate_bytes, record
from .settings import SETTINGS, Setting, Settings
from .tasks import TASKS, make_batch
from .training import TrainConfig, Trainer, train

__all__ = [
    "DecayFit",
    "analysis",
    "figures",
    "prose",
    "tables",
    "decay_fit",
    "gate_stats",
    "recurrent_spectral_radii",
    "ARCHS",
    "DEFAULT_MAX_BYTES",
    "INITS",
    "INPUTS",
    "Recording",
    "SETTINGS",
    "Setting",
    "Settings",
    "build_model",
    "estimate_bytes",
    "make_input",
    "record",
    "TASKS",
    "make_batch",
    "TrainConfig",
    "Trainer",
    "train",
]
