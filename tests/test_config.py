"""Configuration: environment, overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.config import ConfigError, Settings
from enclave.pipeline.access import AccessError, Principal


def test_env_then_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCLAVE_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("ENCLAVE_CHUNK_TOKENS", "120")
    settings = Settings.load()
    assert settings.data_dir == tmp_path / "env"
    assert settings.chunk_tokens == 120
    assert Settings.load(data_dir=tmp_path / "flag").data_dir == tmp_path / "flag"


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENCLAVE_DATA_DIR", raising=False)
    assert Settings.load().data_dir == Path.home() / ".local" / "share" / "enclave"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENCLAVE_CHUNK_TOKENS", "many", "is not a int"),
        ("ENCLAVE_LLM_BACKEND", "magic", "ENCLAVE_LLM_BACKEND"),
        ("ENCLAVE_CHUNK_OVERLAP", "0.9", "ENCLAVE_CHUNK_OVERLAP"),
        ("ENCLAVE_SOURCE_MARGIN", "-0.1", "ENCLAVE_SOURCE_MARGIN"),
        ("ENCLAVE_SOURCE_MARGIN", "wide", "is not a float"),
    ],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Settings.load()


def test_principal_parsing() -> None:
    assert Principal.parse("group:hr") == Principal("group", "hr")
    assert str(Principal.parse(" user:alice ")) == "user:alice"
    for bad in ("alice", "team:x", "user:", "user:a b", "group:-x"):
        with pytest.raises(AccessError):
            Principal.parse(bad)


def test_missing_embedding_model_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from enclave.pipeline.embedding import Embedder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="ENCLAVE_EMBEDDING_MODEL"):
        Embedder("some-org/some-model")
    (tmp_path / "model").mkdir()
    with pytest.raises(ConfigError, match="ENCLAVE_EMBEDDING_MODEL"):
        Embedder(str(tmp_path / "model"))


def test_missing_reranker_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from enclave.pipeline.reranking import Reranker

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="ENCLAVE_RERANKER_MODEL"):
        Reranker("some-org/some-reranker")
