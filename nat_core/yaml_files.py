"""Reading the project's YAML files: numbers as YAML 1.2 reads them, errors as one line.

PyYAML implements YAML 1.1, whose float pattern needs a dot: ``2e-05`` (what Python's
``repr`` writes for small floats) is read as the string ``'2e-05'``. ``load_yaml_text``
reads it as the number it is, as YAML 1.2 does. A syntax error becomes one line naming the
file, the line and the column (``file.yaml:3:7: not valid YAML: ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["NumberLoader", "load_yaml_text", "yaml_error_line", "yaml_float"]


class NumberLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent floats without a dot (``2e-05``)."""


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_error_line(source: str | Path, error: yaml.YAMLError) -> str:
    """One line: ``source:LINE:COLUMN: not valid YAML: PROBLEM`` (1-based, as editors count)."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(source)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or str(error)
    return f"{where}: not valid YAML: {' '.join(str(problem).split())}"


def load_yaml_text(text: str, *, source: str | Path, error: type[Exception]) -> Any:
    """Parse ``text``; a syntax error raises ``error`` with :func:`yaml_error_line`."""
    try:
        return yaml.load(text, Loader=NumberLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as parse_error:
        raise error(yaml_error_line(source, parse_error)) from parse_error


def yaml_float(value: float) -> str:
    """``repr(value)`` with a dot in the mantissa (``2.0e-05``), so YAML 1.1 reads a float."""
    text = repr(float(value))
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text
