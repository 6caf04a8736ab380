"""Ollama: a Modelfile for a local run's export, and publishing it through Ollama's HTTP API.

Publishing uses the official `ollama` client the way Ollama's API documents it: every
file is uploaded as a blob by its sha-256 digest (`create_blob`), then `create` names the
model with `files` (a safetensors folder, which Ollama converts itself for Llama, Mistral
and Gemma, or a GGUF file) or `from` + `adapters` (a LoRA on a base model Ollama has),
with the chat template, stop parameters and system prompt of the model's family.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jinja2
import ollama

from domain.errors import InvalidInput, NotFound, RuleViolation
from domain.local_training import CHAT_TEMPLATES, LocalTrainingConfig

# Ollama's Go templates, one per family (see Ollama's Modelfile and template docs)
GO_TEMPLATES = {
    "llama3": (
        "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{ range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "mistral": (
        "{{- range $i, $_ := .Messages }}{{- if eq .Role \"user\" }}[INST] {{ if and $.System (eq $i 0) }}"
        "{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>"
        "{{- end }}{{- end }}"
    ),
    "chatml": (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ range .Messages }}<|im_start|>"
        "{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
    ),
}
STOPS = {
    "llama3": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "mistral": ["[INST]", "[/INST]"],
    "chatml": ["<|im_start|>", "<|im_end|>"],
}
#: what a safetensors folder holds that Ollama reads
MODEL_FILES = ("*.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")  # fmt: skip

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                          autoescape=False)  # noqa: S701 (a Modelfile, not HTML)  # fmt: skip


def client(host: str, api_key: str | None = None) -> ollama.Client:
    """A client that sends `api_key` and no other: the `ollama` package would add OLLAMA_API_KEY from the
    environment to a request to any host. Redirects are not followed (they could lead anywhere)."""
    made = ollama.Client(host=host, follow_redirects=False,
                         headers={"Authorization": f"Bearer {api_key}"} if api_key else None)  # fmt: skip
    if not api_key:
        made._client.headers.pop("authorization", None)
    return made


def family_of(chat_template: str) -> str:
    if chat_template not in CHAT_TEMPLATES:
        raise InvalidInput(f"Unknown chat template {chat_template!r}: use one of {', '.join(CHAT_TEMPLATES)}.")
    return CHAT_TEMPLATES[chat_template]["ollama"]


@dataclass(frozen=True)
class Export:
    """What a local run saved: a safetensors folder (merged), a GGUF file, or a LoRA adapter folder."""

    kind: str  # merged_16bit, gguf or lora
    path: Path

    @classmethod
    def find(cls, artifacts: str | Path, kind: str) -> Export:
        path = Path(artifacts)
        if not path.exists():
            raise NotFound(f"The artifacts {path} are missing: train the model first, or give the folder it wrote.")
        if kind == "gguf":
            ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else [path]
            if not ggufs or ggufs[0].suffix != ".gguf":
                raise NotFound(f"No .gguf file in {path}: a gguf export needs Unsloth and llama.cpp.")
            return cls(kind, ggufs[0])
        if not any(path.glob("*.safetensors")):
            raise NotFound(f"No .safetensors file in {path}: give the folder of a merged_16bit or lora export.")
        return cls(kind, path)

    def files(self) -> list[Path]:
        if self.kind == "gguf":
            return [self.path]
        found = sorted({f for pattern in MODEL_FILES for f in self.path.glob(pattern)})
        return found if self.kind != "lora" else sorted(self.path.glob("adapter*"))


def modelfile(export: Export, chat_template: str, *, system: str | None = None, base: str | None = None,
              temperature: float | None = None) -> str:  # fmt: skip
    """The Modelfile, with paths relative to the export (write it beside the export folder)."""
    family = family_of(chat_template)
    if export.kind == "lora" and not base:
        raise InvalidInput("A LoRA export needs the base model Ollama has (for example llama3.2:1b) as FROM.")
    source = f"./{export.path.name}" if export.kind != "gguf" else f"./{export.path.parent.name}/{export.path.name}"
    return _env.get_template("Modelfile.j2").render(
        from_=base if export.kind == "lora" else source, adapter=source if export.kind == "lora" else None,
        template=GO_TEMPLATES[family], stops=STOPS[family], system=system, temperature=temperature,
    )  # fmt: skip


@dataclass(frozen=True)
class Published:
    model: str
    digests: dict[str, str]
    statuses: list[str]


def publish(client: ollama.Client, name: str, export: Export, chat_template: str, *, system: str | None = None,
            base: str | None = None) -> Published:  # fmt: skip
    """Uploads every file of the export as a blob, then creates the model (the API's two steps)."""
    family = family_of(chat_template)
    digests = {f.name: client.create_blob(f) for f in export.files()}
    settings: dict[str, Any] = {"template": GO_TEMPLATES[family], "parameters": {"stop": STOPS[family]},
                                "system": system}  # fmt: skip
    if export.kind == "lora":
        if not base:
            raise InvalidInput("A LoRA export needs the base model Ollama has (for example llama3.2:1b).")
        progress = client.create(model=name, from_=base, adapters=digests, stream=True, **settings)
    else:
        progress = client.create(model=name, files=digests, stream=True, **settings)
    statuses = [p.status for p in progress if p.status]
    return Published(name, digests, statuses)


def list_models(client: ollama.Client) -> list[dict[str, Any]]:
    return [{"name": m.model, "size": m.size, "modified_at": m.modified_at.isoformat() if m.modified_at else None,
             "family": m.details.family if m.details else None} for m in client.list().models]  # fmt: skip


def delete_model(client: ollama.Client, name: str) -> None:
    try:
        client.delete(name)
    except ollama.ResponseError as e:
        if e.status_code == 404:
            raise NotFound(f"Ollama has no model {name!r}: list them with `ft-cli ollama list`.") from None
        raise


class OllamaPublisher:
    """Publishes a local run's export to an Ollama server for the job service (application/job_runs.py):
    Ollama's own errors become one clear RuleViolation each."""

    def publish(self, artifacts: str, config: LocalTrainingConfig, name: str, *, host: str, api_key: str | None,
                system: str | None, base: str | None) -> tuple[str, dict[str, str]]:  # fmt: skip
        """Uploads the export and creates `name`; returns the chat family and the blobs' digests."""
        export = Export.find(artifacts, config.export)
        try:
            published = publish(client(host, api_key), name, export, config.chat_template, system=system, base=base)
        except ollama.ResponseError as e:
            raise RuleViolation(f"Ollama at {host} refused to create {name!r}: {e.error}.") from None
        except (ConnectionError, OSError, httpx.HTTPError) as e:
            raise RuleViolation(f"Ollama is not reachable at {host} ({type(e).__name__}): start it (`ollama serve`) "
                                "or give its address with --host / OLLAMA_HOST.") from None  # fmt: skip
        return family_of(config.chat_template), published.digests
