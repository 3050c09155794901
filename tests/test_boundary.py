"""The library is a library: no module of lstm_viz imports streamlit, and no module is orphaned."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import lstm_viz

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(f"lstm_viz.{m.name}" for m in pkgutil.iter_modules(lstm_viz.__path__))


def test_every_library_module_imports_without_streamlit():
    assert {"lstm_viz.settings", "lstm_viz.record", "lstm_viz.figures", "lstm_viz.cli"} <= set(MODULES)
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_check_catches_a_module_that_imports_streamlit(tmp_path):
    """The subprocess check above can fail: a package importing streamlit is caught by it."""
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "__init__.py").write_text("import streamlit\n")
    code = "import sys, leaky\nassert 'streamlit' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0 and "AssertionError" in result.stderr
