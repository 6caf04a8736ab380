"""The outbound rule, named endpoints in the settings, and paths that stay inside their folders.

No network: literal addresses, `localhost` (from /etc/hosts), and a resolver the test gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from adapters.local_jobs import LocalTrainer
from adapters.outbound import check_url
from adapters.paths import data_file, inside
from api.settings import Settings, endpoints_from_env, settings_error_message
from domain.errors import InvalidInput
from domain.local_training import LocalTrainingConfig

KEY = "sk-test-endpoint-key-5b7d0c"


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8080/v1", "a loopback address"),
    ("http://[::1]/v1", "a loopback address"),
    ("http://[::ffff:127.0.0.1]/v1", "a loopback address"),
    ("http://10.0.0.8/v1", "a private address"),
    ("http://172.16.3.4/v1", "a private address"),
    ("https://192.168.1.20/v1", "a private address"),
    ("http://[fd12:3456::1]/v1", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "a cloud metadata address"),
    ("http://100.100.100.200/latest/meta-data/", "a cloud metadata address"),
    ("http://169.254.10.1/", "a link-local address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://0.0.0.0:11434/", "an unspecified address"),
    ("http://224.0.0.251/", "a multicast address"),
    ("http://100.64.0.1/", "not a public address"),
])  # fmt: skip
def test_a_url_whose_address_is_not_public_is_refused_with_the_reason_and_the_fix(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match="Refusing to call") as refused:
        check_url(url)
    assert why in refused.value.detail and "FT_ENDPOINTS" in refused.value.detail
    assert "FT_ALLOW_PRIVATE_ENDPOINTS=true" in refused.value.detail and refused.value.slug == "outbound-refused"


def test_localhost_is_refused_as_the_loopback_it_resolves_to() -> None:
    with pytest.raises(InvalidInput, match="localhost is (127.0.0.1|::1), a loopback address"):
        check_url("http://localhost:11434/v1")


def test_a_name_that_resolves_to_a_private_address_is_refused_and_a_public_one_is_taken() -> None:
    with pytest.raises(InvalidInput, match="10.1.2.3, a private address"):
        check_url("https://models.example.test/v1", resolve=lambda host: ["93.184.216.34", "10.1.2.3"])
    url = "https://models.example.test/v1"
    assert check_url(url, resolve=lambda host: ["93.184.216.34", "2606:4700::1111"]) == url
    assert check_url("https://93.184.216.34/v1") == "https://93.184.216.34/v1"


def test_a_host_that_does_not_resolve_and_a_url_that_is_not_http_are_refused() -> None:
    def nowhere(host: str) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(InvalidInput, match="'nowhere.test' of 'http://nowhere.test/v1' cannot be resolved"):
        check_url("http://nowhere.test/v1", resolve=nowhere)
    for url in ("file:///etc/passwd", "gopher://127.0.0.1:25/", "http:///v1", "127.0.0.1:8080", "http://h:port/"):
        with pytest.raises(InvalidInput, match="is not an http\\(s\\) URL with a host"):
            check_url(url)


def test_a_configured_endpoint_is_called_even_on_loopback_but_only_at_its_own_origin() -> None:
    configured = ["http://127.0.0.1:11434"]
    assert check_url("http://127.0.0.1:11434/api/create", configured=configured)
    with pytest.raises(InvalidInput, match="a loopback address"):
        check_url("http://127.0.0.1:8000/v1/jobs", configured=configured)  # same host, another port
    with pytest.raises(InvalidInput, match="a loopback address"):
        check_url("https://127.0.0.1:11434/", configured=configured)  # another scheme


def test_allowing_private_endpoints_lets_loopback_through_but_never_a_metadata_service() -> None:
    assert check_url("http://localhost:11434", allow_private=True) == "http://localhost:11434"
    assert check_url("http://10.0.0.8/v1", allow_private=True) == "http://10.0.0.8/v1"
    with pytest.raises(InvalidInput, match="a cloud metadata address"):
        check_url("http://169.254.169.254/", allow_private=True)


def test_endpoints_come_from_ft_endpoints_as_json_beside_the_implicit_openai_and_ollama(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.example.test/v1/")
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("FT_ENDPOINTS", '{"vllm": {"base_url": "http://10.0.0.5:8000/v1", "api_key": "sk-vllm-1"},'
                                       ' "gpu-box": {"base_url": "gpu-box:11434", "kind": "ollama"}}')
    settings = Settings()
    endpoints = settings.outbound_endpoints
    assert sorted(endpoints) == ["gpu-box", "ollama", "openai", "vllm"]
    assert endpoints["openai"].base_url == "https://llm.example.test/v1" and endpoints["openai"].key == KEY
    assert endpoints["ollama"].base_url == "http://127.0.0.1:11434" and endpoints["ollama"].key is None
    assert endpoints["gpu-box"].base_url == "http://gpu-box:11434" and endpoints["gpu-box"].chat_url.endswith("/v1")
    assert endpoints["vllm"].key == "sk-vllm-1" and settings.endpoint("vllm", field="endpoint").kind == "openai"
    assert KEY not in repr(settings) and "sk-vllm-1" not in repr(settings) and "sk-vllm-1" not in str(endpoints)
    assert "sk-vllm-1" not in settings.model_dump_json()
    assert endpoints_from_env() == endpoints  # what the CLI sees


def test_a_url_or_an_unknown_name_is_refused_with_the_configured_names_and_how_to_add_one() -> None:
    settings = Settings(endpoints={"vllm": {"base_url": "http://10.0.0.5:8000/v1"}})
    for given, shown in (("http://evil.example.test/v1", "not a URL"), ("nope", "not 'nope'")):
        with pytest.raises(InvalidInput) as refused:
            settings.endpoint(given, field="endpoint")
        detail = refused.value.detail
        assert shown in detail and "configured endpoints are ollama, openai, vllm" in detail
        assert "FT_ENDPOINTS=" in detail and refused.value.slug == "unknown-endpoint"
    with pytest.raises(InvalidInput, match="configured ollama endpoints are ollama"):
        settings.endpoint("vllm", field="endpoint", kind="ollama")


@pytest.mark.parametrize(("spec", "message"), [
    ('{"bad name": {"base_url": "http://h/v1"}}', "FT_ENDPOINTS name 'bad name' is not valid"),
    ('{"a": {"base_url": "http://user:sk-secret@h/v1"}}', "put the key in api_key"),
    ('{"a": {"base_url": "ftp://h/"}}', "is not an http(s) URL"),
    ('{"a": {"base_url": "http://h/v1", "kind": "vertex"}}', "'openai' or 'ollama'"),
])  # fmt: skip
def test_a_malformed_endpoint_setting_stops_the_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, spec: str, message: str
) -> None:
    monkeypatch.setenv("FT_ENDPOINTS", spec)
    with pytest.raises(ValidationError) as refused:
        Settings()
    text = settings_error_message(refused.value)
    assert message in text and "sk-secret" not in text


def test_a_path_is_inside_its_folder_only_when_it_resolves_there(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "train.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("s")
    (root / "link.jsonl").symlink_to(tmp_path / "secret.txt")
    assert inside(root, "sub/train.jsonl") == (root / "sub" / "train.jsonl").resolve()
    assert inside(root, str(root / "sub" / "train.jsonl")) == (root / "sub" / "train.jsonl").resolve()
    assert inside(root, "sub/../sub/train.jsonl") is not None  # `..` that stays inside is harmless
    for escape in ("../secret.txt", str(tmp_path / "secret.txt"), "link.jsonl", "/etc/shadow", ".", "", "a\0b"):
        assert inside(root, escape) is None, escape


def test_every_file_outside_the_data_folder_gets_the_same_message_whether_or_not_it_exists(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "there.jsonl").write_text("{}\n")
    messages = set()
    for path in ("/etc/shadow", "/etc/no-such-file", "../there.jsonl", "../not-there.jsonl", "/root/.ssh/id_rsa"):
        with pytest.raises(InvalidInput) as refused:
            data_file(root, path, "training_file")
        messages.add(refused.value.detail)
    assert messages == {f"training_file must name a file under the data folder FT_DATA_DIR ({root.resolve()}): give "
                        "a path relative to it, such as train.jsonl, and put the file there."}  # fmt: skip


@pytest.mark.parametrize("job_id", ["..", ".", "../escaped", "a/../..", "nested/run"])
def test_a_local_run_folder_outside_the_runs_folder_is_refused_before_anything_is_written(
    tmp_path: Path, job_id: str
) -> None:
    runs = tmp_path / "area" / "runs"
    trainer = LocalTrainer(runs, python="/bin/false")
    config = LocalTrainingConfig.validate(base_model="unsloth/Llama-3.2-1B-Instruct", max_steps=1)
    with pytest.raises(InvalidInput, match="does not name a folder inside the local runs folder"):
        trainer.start(job_id, config, b'{"messages": []}\n')
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no train.py, train.jsonl or train.log anywhere
