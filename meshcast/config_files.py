"""The YAML files that configure meshcast (recipes, the default bundle's plan, the service's
settings), each mistake in one told in one line: the file, the place, what is wrong.

PyYAML's syntax errors and pydantic's validation reports run to a page each; the command line
ends every failure with one line, and a user needs the file's name most of all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
NOT_TEXT = "not a YAML file (it is not text)"


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file: ``{}``).

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: the file is not YAML, or holds something other than a mapping.
    """
    path = Path(path)
    try:
        fields = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ValueError(describe_yaml_error(path, error)) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {NOT_TEXT}") from None
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise ValueError(
            f"{path}: expected a YAML mapping of 'key: value' lines, found a "
            f"{type(fields).__name__}"
        )
    return fields


def load_yaml_model(model: type[Model], path: str | Path) -> Model:
    """``model`` validated from the YAML file at ``path``.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: the file is not YAML, not a mapping, or a value or key is not allowed,
            said in one line.
    """
    return validate_model(model, read_yaml_mapping(path), source=str(path))


def validate_model(model: type[Model], fields: object, source: str) -> Model:
    """``model`` validated from ``fields`` read from ``source`` (named in the error).

    Raises:
        ValueError: a value or key that is not allowed, said in one line.
    """
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        raise ValueError(describe_validation_error(source, error)) from None


def describe_yaml_error(path: str | Path, error: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: the file, the line and column, the problem."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{path}: not valid YAML: {where}{problem}"


def describe_validation_error(source: str | None, error: ValidationError) -> str:
    """One line for pydantic's report: the first problem's place and message, and how many
    more there are."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    if not where and first["type"] in {"model_type", "dict_type"}:
        message = "expected a mapping of 'key: value' lines"
    else:
        message = f"{where}: {first['msg']}" if where else first["msg"]
    more = error.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return f"{source}: {message}" if source else message
