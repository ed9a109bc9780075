"""JSON from files that may be hostile: bounded size, bounded nesting, finite numbers only.

A leaf module (it imports nothing from scalgui), shared by every reader of JSON a user may
have been sent: projects' manifests and effect presets.

:func:`json.loads` alone is not safe on such text: nesting a few thousand brackets deep
raises :class:`RecursionError` (or worse, a crash) from inside the parser; ``1e400``
becomes ``inf`` and ``NaN``/``Infinity`` are accepted, which strict JSON has no words for;
an integer of a million digits costs quadratic time before Python's digit limit stops it;
and a duplicated key silently keeps its last value. :func:`loads_bounded` refuses all of
these with a one-line :class:`ValueError`, checking size and nesting *before* the parser
recurses.
"""
from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "MAX_NUMBER_CHARS", "loads_bounded"]

#: Default largest text accepted, in bytes (characters for ``str`` input).
DEFAULT_MAX_BYTES = 8 * 2**20
#: Default deepest nesting of arrays and objects accepted (the top level counts as 1).
DEFAULT_MAX_DEPTH = 64
#: Longest number literal accepted, in characters: float64 needs at most 17 significant
#: digits and a 3-digit exponent; anything far longer is not a number a program wrote.
MAX_NUMBER_CHARS = 100

# A JSON string: quotes around characters other than quote and backslash, or escapes.
# Written without nested repetition so that it runs in linear time on any input.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nesting_depth(text: str) -> int:
    """Deepest bracket nesting of ``text`` outside strings.

    On valid JSON this is the parser's recursion depth. On invalid JSON it may differ
    from it only after the point where the parser stops with a syntax error (up to there
    both read strings the same way), so it never under-counts the depth the parser
    reaches.
    """
    outside_strings = _STRING.sub("", text)
    steps = (_DEPTH_STEP[b] for b in _BRACKETS.findall(outside_strings))
    return max(accumulate(steps, initial=0))


def _finite_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(literal)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal} is out of range (beyond about 1.8e308)")
    return value


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(literal)} characters (at most {MAX_NUMBER_CHARS})")
    return int(literal)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (strict JSON has only finite numbers)")


def _unique_keys(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key[:80]!r} appears twice in one object")
        result[key] = value
    return result


def loads_bounded(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse JSON that may come from an untrusted file.

    Parameters
    ----------
    text : str or bytes
        The JSON text; bytes must be UTF-8 (a leading byte-order mark is allowed).
    max_depth : int
        Deepest nesting of arrays and objects accepted; the top-level value is depth 1
        (``[]`` is 1, ``[[1]]`` is 2).
    max_bytes : int
        Largest text accepted, in bytes (in characters when ``text`` is a ``str``).

    Returns
    -------
    object
        What :func:`json.loads` returns, with ``dict`` objects.

    Raises
    ------
    ValueError
        One line saying why: larger than ``max_bytes``, not UTF-8, nested deeper than
        ``max_depth``, not valid JSON (with line and column), a number that is not finite
        (``1e400``, ``NaN``, ``Infinity``) or absurdly long, or a key repeated in one
        object.
    """
    if len(text) > max_bytes:
        raise ValueError(f"{len(text)} bytes of JSON, more than the {max_bytes} accepted")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    depth = _nesting_depth(text)
    if depth > max_depth:
        raise ValueError(f"JSON nested {depth} levels deep, more than the {max_depth} accepted")
    try:
        return json.loads(text, parse_float=_finite_float, parse_int=_bounded_int,
                          parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:  # only if max_depth was set above what this interpreter allows
        raise ValueError("JSON nested too deeply (more than this program can read)") from None
