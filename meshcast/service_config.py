"""The service's settings as the commands read them: :func:`service.settings.load_settings`,
with a value that is not allowed told in one line (pydantic's report is a page, and the command
line ends every failure with one line)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from meshcast.config_files import NOT_TEXT, describe_validation_error, describe_yaml_error
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
    except yaml.YAMLError as error:
        raise ValueError(describe_yaml_error(path or "the settings", error)) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {NOT_TEXT}") from None
    except ValidationError as error:
        raise ValueError(describe_validation_error(str(path or "the settings"), error)) from None
