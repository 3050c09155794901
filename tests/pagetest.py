"""Helpers the AppTest files share: run one page as a link opens it, and read the arrays a chart ships."""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # pages import ui.py, as under `streamlit run app.py`


def run_page(page: str, params: Mapping[str, str], *, errors_allowed: bool = False) -> AppTest:
    """AppTest of ROOT/page opened with these URL parameters (AppTest's 3 s default is too short
    here: 60 s); asserts it ran without an exception (and, unless errors_allowed, without st.error)."""
    at = AppTest.from_file(ROOT / page, default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if not errors_allowed:
        assert not at.error, [e.value for e in at.error]
    return at


def plotly_array(value) -> np.ndarray:
    """A trace field of a Plotly JSON spec as numpy (plotly.py ships numpy arrays as base64)."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(n) for n in shape.split(",")]
        return data.reshape(shape) if shape is not None else data
    return np.asarray(value)
