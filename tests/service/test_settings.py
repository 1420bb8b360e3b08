"""The service's settings: the documented example loads, and an unknown key is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import hash_api_key, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "service.example.yaml"


def test_the_example_settings_load_and_hold_the_example_keys_digest() -> None:
    settings = load_settings(EXAMPLE)
    (key,) = settings.gateway.api_keys
    assert key.sha256 == hash_api_key("example-key-change-me")
    assert settings.worker.device == "auto"


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("gateway: {prot: 8000}\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(path)
