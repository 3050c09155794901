"""lstm-viz: see why recurrent networks forget.

Data flows one way: inputs -> models -> record (the one place that runs backward)
-> analysis / figures -> pages. This package never imports streamlit.
"""

from .inputs import INPUTS, make_input
from .models import ARCHS, INITS, build_model
from .record import DEFAULT_MAX_BYTES, Recording, estimate_bytes, record

__all__ = [
    "ARCHS",
    "DEFAULT_MAX_BYTES",
    "INITS",
    "INPUTS",
    "Recording",
    "build_model",
    "estimate_bytes",
    "make_input",
    "record",
]
