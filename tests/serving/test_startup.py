"""What the service refuses at start: no keys, no champion, a model that does not fit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from churnml.errors import ConfigError, ModelError
from serving.auth import KeyRing
from serving.loading import check_model, check_registered, load_served_model
from serving.settings import ServingSettings


def test_without_keys_the_service_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="CHURNML_AUTH=off"):
        ServingSettings.from_env({"CHURNML_HOME": "/tmp/x"})


def test_auth_off_is_an_explicit_choice() -> None:
    settings = ServingSettings.from_env({"CHURNML_AUTH": "off"})
    assert settings.auth is False


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="shorter than 16"):
        ServingSettings.from_env({"CHURNML_API_KEYS": "abc"})


def test_keys_come_from_a_file_too(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# scorers\nfile-key-0123456789abcdef\n\n")
    settings = ServingSettings.from_env(
        {"CHURNML_API_KEYS_FILE": str(path), "CHURNML_ADMIN_KEYS": "admin-key-0123456789abcdef"}
    )
    assert settings.api_keys == ("file-key-0123456789abcdef",)


def test_the_key_ring_answers_scopes() -> None:
    ring = KeyRing(("api-key-0123456789abcdef",), ("admin-key-0123456789abcdef",))
    assert ring.scope_of(b"api-key-0123456789abcdef") == "api"
    assert ring.scope_of(b"admin-key-0123456789abcdef") == "admin"
    assert ring.scope_of(b"api-key-0123456789abcdeX") is None
    assert ring.scope_of(b"") is None


def test_without_a_champion_the_load_fails_with_one_line(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(ModelError) as error:
        check_registered("models:/churn-risk@champion", uri)
    assert "\n" not in str(error.value) and "champion" in str(error.value)
    with pytest.raises(ModelError, match="champion"):
        load_served_model("models:/churn-risk@champion", uri)


@pytest.mark.parametrize("uri", ["runs:/abc/model", "models:/", "models:/x/latest", "churn-risk"])
def test_model_uris_are_checked(uri: str) -> None:
    with pytest.raises(ModelError, match="expected models:/"):
        check_registered(uri, "sqlite:///unused.db")


def test_a_model_whose_features_do_not_match_the_builders_is_refused(registry_home: Path) -> None:
    served = load_served_model(
        "models:/churn-risk@champion", f"sqlite:///{(registry_home / 'mlflow.db').resolve()}"
    )
    check_model(served.model)
    broken = replace(served.model, feature_names=served.model.feature_names[:-1])
    with pytest.raises(ModelError, match="do not match"):
        check_model(broken)
    old_contract = replace(
        served.model, metadata={**served.model.metadata, "contract_version": "0"}
    )
    with pytest.raises(ModelError, match="contract"):
        check_model(old_contract)
