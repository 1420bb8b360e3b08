"""The service's settings: the documented example loads, and an unknown key is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from service.settings import hash_api_key, load_settings, resolve_api_keys

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


def test_the_gateways_keys_file_adds_its_keys_and_the_workers_never_read_it(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "api-keys.yaml"
    example = yaml.safe_load(EXAMPLE.read_text())
    example["gateway"]["api_keys_file"] = str(keys)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(example))
    settings = load_settings(path)  # as a worker loads them: the file is not there
    with pytest.raises(FileNotFoundError):
        resolve_api_keys(settings)
    keys.write_text(f"- {{id: team-b, sha256: {hash_api_key('b-key')}}}\n")
    resolved = resolve_api_keys(settings)
    assert [key.id for key in resolved.gateway.api_keys] == ["example-team", "team-b"]
    assert resolved.gateway.api_keys[1].sha256 == hash_api_key("b-key")
    keys.write_text("- {id: team-b, sha256: not-a-digest}\n")
    with pytest.raises(ValueError, match=r"entry 0\.sha256: String should match pattern"):
        resolve_api_keys(settings)
