"""Locate the files bundled in the repository's top-level ``resources/`` folder.

The folder sits next to the ``scalgui`` package (``<repo>/resources``), so these helpers
work from a source checkout or an editable install (``pip install -e .``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["resources_dir", "example_path", "EXAMPLE_NAME"]

#: File name of the bundled example sound inside :func:`resources_dir`.
EXAMPLE_NAME = "example.flac"


def resources_dir() -> Path:
    """Return the repository's ``resources/`` folder.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist (e.g. scalgui was installed without its source tree).
    """
    path = Path(__file__).resolve().parent.parent / "resources"
    if not path.is_dir():
        raise FileNotFoundError(
            f"scalgui's resources folder was not found at {path}; it lives at the top of "
            "the source repository - run from a checkout or an editable install (pip install -e .)"
        )
    return path


def example_path() -> Path:
    """Return the path of the bundled example sound, ``resources/example.flac``.

    Raises
    ------
    FileNotFoundError
        If the resources folder or the file is missing (regenerate the file with
        ``python scripts/make_example.py``).
    """
    path = resources_dir() / EXAMPLE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"the example sound {path} is missing; regenerate it with "
            "`python scripts/make_example.py`"
        )
    return path
