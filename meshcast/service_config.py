"""The service's settings as the commands read them: :func:`service.settings.load_settings`,
with a value that is not allowed told in one line (pydantic's report is a page, and the command
line ends every failure with one line)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from service.settings import ServiceSettings, load_settings


def load_service_settings(path: Path | None) -> ServiceSettings:
    """The settings of ``path`` (default: ``$MESHCAST_CONFIG``, else the built-in ones), with
    the environment's overrides.

    Raises:
        FileNotFoundError: the file named is missing.
        ValueError: a value that is not allowed, or a key that is not known: its place and
            what is wrong with it, in one line.
    """
    try:
        return load_settings(path)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(
            f"{path or 'the settings'}: {where}: {first['msg']} ({error.error_count()} errors)"
        ) from error
