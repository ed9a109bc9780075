"""The layer rules of DESIGN.md, checked by import-linter's contracts in pyproject.toml."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    pytest.importorskip("importlinter")
    lint = shutil.which("lint-imports")
    command = [lint] if lint else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_dsp_and_audio_import_without_qt():
    """Importing the signal-processing and audio layers loads no Qt module."""
    code = (
        "import sys, scalgui.dsp.frame, scalgui.dsp.raster, scalgui.audio; "
        "bad = [m for m in sys.modules if m.startswith(('PyQt6', 'pyqtgraph'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
