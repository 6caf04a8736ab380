"""`ft-cli ollama …`: a runnable Unsloth script with its Modelfile (the seed's create-ollama-script),
and the models an Ollama server has."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import Commands, JsonOpt, fail, ollama_target, out, print_json, table
from api.cli.local import (
    ExportOpt,
    FourBitOpt,
    LocalEpochsOpt,
    MaxStepsOpt,
    QuantizationOpt,
    TemplateOpt,
    local_config,
)
from domain.errors import InvalidInput

commands = Commands()


def _check_chat_rows(path: Path) -> None:
    """The script reads JSONL rows of chat `messages`: refuse another format (an Alpaca JSON array) up front."""
    import json as json_

    expected = ('the script reads JSONL, one {"messages": [{"role": ..., "content": ...}, ...]} per line: export a '
                "dataset that way with `ft-cli datasets export ID --format openai`")  # fmt: skip
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if number == 1 and line.lstrip().startswith("["):
                    raise InvalidInput(f"{path} is a JSON array (Alpaca's format?), not chat rows: {expected}.")
                try:
                    row = json_.loads(line)
                except json_.JSONDecodeError as e:
                    raise InvalidInput(f"{path}, line {number} is not JSON ({e.msg}): {expected}.") from None
                if not isinstance(row, dict) or not isinstance(row.get("messages"), list) or not row["messages"]:
                    raise InvalidInput(f"{path}, line {number} has no chat `messages` list: {expected}.")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"Cannot read {path}: {e}.") from None


@commands.command("script")
def create_ollama_script(
    base_model: Annotated[str, typer.Argument(help="unsloth/Llama-3.2-1B-Instruct-bnb-4bit, or a local folder")],
    dataset_file: Annotated[Path, typer.Argument(help="JSONL of chat `messages` rows", exists=True, dir_okay=False)],
    output_model_name: Annotated[str, typer.Argument(help="The Ollama model name to create, e.g. support-bot")],
    chat_template: TemplateOpt = "llama-3.1",
    max_seq_length: Annotated[int, typer.Option()] = 2048,
    load_in_4bit: FourBitOpt = True,
    lora_r: Annotated[int, typer.Option()] = 16,
    lora_alpha: Annotated[int, typer.Option()] = 16,
    epochs: LocalEpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    learning_rate: Annotated[float, typer.Option()] = 2e-4,
    batch_size: Annotated[int, typer.Option()] = 2,
    gradient_accumulation: Annotated[int, typer.Option()] = 4,
    export: ExportOpt = "merged_16bit",
    quantization: QuantizationOpt = None,
    system: Annotated[str | None, typer.Option(help="SYSTEM prompt of the Modelfile")] = None,
    output: Annotated[Path, typer.Option(help="Folder for train.py, config.json and the Modelfile")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Write a runnable Unsloth training script, its config and an Ollama Modelfile for the result."""
    import json as json_

    from adapters import ollama as ollama_adapter
    from adapters.unsloth import SCRIPT_NAME, render_script
    from domain.local_training import LocalTrainingConfig

    settings = local_config(chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, epochs, max_steps,
                             learning_rate, batch_size, gradient_accumulation, export, quantization)  # fmt: skip
    config = LocalTrainingConfig.validate(base_model=base_model, **settings)
    _check_chat_rows(dataset_file)
    folder = output / output_model_name.replace(":", "-").replace("/", "-")
    # where the script saves (gguf: the file Unsloth names after the model and quantization)
    target = folder / "output" / ("gguf/MODEL.gguf" if config.export == "gguf" else config.export)
    exported = ollama_adapter.Export(config.export, target)
    base = None if config.export != "lora" else "BASE_MODEL_IN_OLLAMA"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SCRIPT_NAME).write_text(render_script(config, dataset_path=str(dataset_file.resolve()),
                                                        output_dir=str((folder / "output").resolve())))  # fmt: skip
        (folder / "config.json").write_text(json_.dumps(config.as_dict(), indent=2) + "\n")
        modelfile = ollama_adapter.modelfile(exported, config.chat_template, system=system, base=base)
        (folder / "output" / "Modelfile").parent.mkdir(exist_ok=True)
        (folder / "output" / "Modelfile").write_text(modelfile)
    except OSError as e:
        raise fail(f"cannot write to {folder}: {e.strerror}") from None
    files = {"script": str(folder / SCRIPT_NAME), "config": str(folder / "config.json"),
             "modelfile": str(folder / "output" / "Modelfile")}  # fmt: skip
    if as_json:
        return print_json(files)
    out.print(f"Wrote {files['script']}, {files['config']} and {files['modelfile']}.")
    out.print(f"Train: python {files['script']}; then: cd {folder / 'output'} && ollama create {output_model_name} "
              "-f Modelfile")  # fmt: skip
    if config.export == "gguf":
        out.print(
            "Note: a gguf export needs llama.cpp, which Unsloth downloads from GitHub and builds; a "
            "merged_16bit export avoids it (Ollama converts safetensors itself for Llama, Mistral and Gemma). "
            "Point FROM at the .gguf file Unsloth writes."
        )
    if base:
        out.print("Note: a LoRA Modelfile needs the base model Ollama has: replace BASE_MODEL_IN_OLLAMA in FROM.")


def _ollama_client(host: str | None) -> Any:
    from adapters import ollama as ollama_adapter

    return ollama_adapter.client(*ollama_target(host))


OllamaHostOpt = Annotated[
    str | None, typer.Option("--host", help="Ollama's URL, or a configured Ollama endpoint (default OLLAMA_HOST)")
]


@commands.command("list")
def list_ollama_models(host: OllamaHostOpt = None, as_json: JsonOpt = False) -> None:
    """The models Ollama has."""
    from adapters import ollama as ollama_adapter

    models = _ollama_call(lambda: ollama_adapter.list_models(_ollama_client(host)), host)
    if as_json:
        return print_json(models)
    table("Ollama models", ["name", "family", "size", "modified"],
           [[m["name"], m["family"], m["size"], m["modified_at"]] for m in models])  # fmt: skip


@commands.command("delete")
def delete_ollama_model(name: str, host: OllamaHostOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a model from Ollama."""
    from adapters import ollama as ollama_adapter

    _ollama_call(lambda: ollama_adapter.delete_model(_ollama_client(host), name), host)
    if as_json:
        return print_json({"model": name, "deleted": True})
    out.print(f"Deleted {name} from Ollama.")


def _ollama_call(call: Any, host: str | None) -> Any:
    import httpx

    try:
        return call()
    except (httpx.HTTPError, ConnectionError, OSError):
        where = ollama_target(host)[0]
        raise fail(f"Ollama is not reachable at {where}: start it (`ollama serve`) or give --host.") from None
