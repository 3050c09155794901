"""lstm-viz: see why recurrent networks forget.

Data flows one way: settings -> inputs -> models -> record (the one place that runs
backward) -> analysis -> tables, prose and figures -> pages. This package never imports
streamlit.
"""

from . import analysis, figures, prose, tables
from .analysis import DecayFit, decay_fit, gate_stats, recurrent_spectral_radii
from .charlm import CharLM, CharLMConfig, CharLMTrainer, load_charlm, next_char_grad_output, shipped_models
from .connectivity import connectivity
from .corpus import VOCAB, Corpus, UnitMatch, Vocabulary, find_units, load_corpus, text_features
from .inputs import INPUTS, make_input
from .loading import MAX_MODEL_BYTES, LoadedModel, load_csv, load_model, load_sequence, load_text
from .models import ARCHS, INITS, MAX_LAYERS, StackedModel, build_model
from .record import DEFAULT_MAX_BYTES, Recording, estimate_bytes, record
from .settings import SETTINGS, Setting, Settings
from .tasks import TASKS, make_batch
from .theory import jacobian_singular_values, lyapunov_exponents
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
    "connectivity",
    "MAX_LAYERS",
    "StackedModel",
    "jacobian_singular_values",
    "lyapunov_exponents",
    "estimate_bytes",
    "make_input",
    "record",
    "TASKS",
    "make_batch",
    "TrainConfig",
    "Trainer",
    "train",
    "CharLM",
    "CharLMConfig",
    "CharLMTrainer",
    "load_charlm",
    "next_char_grad_output",
    "shipped_models",
    "VOCAB",
    "Corpus",
    "UnitMatch",
    "Vocabulary",
    "find_units",
    "load_corpus",
    "text_features",
    "MAX_MODEL_BYTES",
    "LoadedModel",
    "load_csv",
    "load_model",
    "load_sequence",
    "load_text",
]
