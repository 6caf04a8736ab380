"""`ft-cli jobs create-local | estimate-time | publish`: training on this machine (Unsloth) as a job,
its time estimate, and publishing the result to Ollama."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.common import (
    DEFAULT_ACTOR,
    ActorOpt,
    Commands,
    DbOpt,
    JsonOpt,
    ReasonOpt,
    ollama_target,
    opened,
    out,
    print_json,
)
from api.cli.jobs import JobIdArg, ended, fail_if_ended, job_row, show_outcome

commands = Commands()

TemplateOpt = Annotated[str, typer.Option("--chat-template", help="llama-3.1, llama-3, mistral, chatml or qwen-2.5")]
MaxStepsOpt = Annotated[int | None, typer.Option("--max-steps", help="Train this many steps instead of epochs")]
FourBitOpt = Annotated[bool, typer.Option("--load-in-4bit/--no-load-in-4bit")]
LocalEpochsOpt = Annotated[int | None, typer.Option(help="Epochs (default 1)")]
ExportOpt = Annotated[str, typer.Option(help="lora, merged_16bit or gguf")]
QuantizationOpt = Annotated[str | None, typer.Option(help="gguf: q4_k_m, q5_k_m, q8_0 or f16")]


def local_config(chat_template: str, max_seq_length: int, load_in_4bit: bool, lora_r: int, lora_alpha: int,
                  epochs: int | None, max_steps: int | None, learning_rate: float, batch_size: int,
                  gradient_accumulation: int, export: str, quantization: str | None) -> dict[str, Any]:  # fmt: skip
    return {"chat_template": chat_template, "max_seq_length": max_seq_length, "load_in_4bit": load_in_4bit,
            "lora_r": lora_r, "lora_alpha": lora_alpha, "epochs": None if max_steps else (epochs or 1),
            "max_steps": max_steps, "learning_rate": learning_rate, "batch_size": batch_size,
            "gradient_accumulation": gradient_accumulation, "export": export,
            "quantization": quantization}  # fmt: skip


def print_time(estimate: dict[str, Any]) -> None:
    time_ = estimate.get("time")
    if time_:
        out.print(f"Estimated training time on {time_['hardware']}: {time_['seconds']:,.1f} s ({time_['method']}: "
                  f"{time_['detail']}).")  # fmt: skip
    else:
        out.print("No time estimate: the model's parameter count is unknown (name it like ...-1B, or use a folder).")


@commands.command("create-local")
def create_local_job(
    base_model: Annotated[str, typer.Argument(help="unsloth/Llama-3.2-1B-Instruct-bnb-4bit, or a local folder")],
    dataset: Annotated[str, typer.Option("--dataset", help="The dataset build to train on (keeps lineage)")],
    model_name: Annotated[str | None, typer.Option(help="Registry name of the result")] = None,
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
    reason: ReasonOpt = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Train locally (Unsloth, on a GPU or its CPU backend) as a job: progress, cancel, registry, cost."""
    settings = local_config(chat_template, max_seq_length, load_in_4bit, lora_r, lora_alpha, epochs, max_steps,
                             learning_rate, batch_size, gradient_accumulation, export, quantization)  # fmt: skip
    with opened(database_url, fresh=False) as rt:
        plan = rt.job_service.plan(base_model=base_model, dataset_id=dataset, provider="local", model_name=model_name,
                                   training_config=settings)  # fmt: skip
        if not as_json:
            print_time(plan.estimate.as_dict())
        outcome = rt.job_service.create(plan, actor=actor, reason=reason)
        if as_json or not ended(outcome):
            show_outcome(rt, outcome, as_json)
    fail_if_ended(outcome)
    if not as_json:
        log = rt.job_service.provider("local").files(plan.spec.job_id).log  # type: ignore[attr-defined]
        out.print(f"Its log: {log}. Follow it with "
                  f"`ft-cli jobs watch {plan.spec.job_id}`.")  # fmt: skip


@commands.command("estimate-time")
def estimate_training_time_command(
    base_model: Annotated[str, typer.Argument(help="A model name with its size (…-1B) or a local folder")],
    dataset: Annotated[str, typer.Option("--dataset", help="Count the tokens of this dataset build")],
    hardware: Annotated[str, typer.Option(help="T4, A10, V100, A100, H100, RTX 4090, Apple M-series or CPU")] = "CPU",
    epochs: LocalEpochsOpt = None,
    max_steps: MaxStepsOpt = None,
    batch_size: Annotated[int, typer.Option()] = 2,
    gradient_accumulation: Annotated[int, typer.Option()] = 4,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Estimate a local run's time from FLOPs and the GPU table, or from an earlier run of the same model."""
    from domain.local_training import LocalTrainingConfig
    from domain.training_time import hardware as hardware_named

    with opened(database_url) as rt:
        service = rt.job_service
        service.kinds["local"].hardware_name = hardware_named(hardware).name  # type: ignore[attr-defined]
        config = LocalTrainingConfig.validate(base_model=base_model, epochs=None if max_steps else (epochs or 1),
                                              max_steps=max_steps, batch_size=batch_size,
                                              gradient_accumulation=gradient_accumulation)  # fmt: skip
        plan = service.plan(
            base_model=base_model,
            dataset_id=dataset,
            provider="local",
            training_config={k: v for k, v in config.as_dict().items() if k != "base_model"},
        )
    estimate = plan.estimate.as_dict()
    if as_json:
        return print_json(estimate.get("time") or {"seconds": None, "detail": "parameter count unknown"})
    print_time(estimate)


@commands.command("publish")
def publish_to_ollama(
    job_id: JobIdArg,
    name: Annotated[str, typer.Argument(help="The Ollama model name, e.g. support-bot:v3")],
    host: Annotated[
        str | None,
        typer.Option(
            help="Ollama's URL, or the name of a configured Ollama endpoint "
            "(default: ollama, from OLLAMA_HOST or 127.0.0.1:11434)"
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="SYSTEM prompt")] = None,
    base: Annotated[str | None, typer.Option(help="LoRA exports: the base model Ollama has")] = None,
    actor: ActorOpt = DEFAULT_ACTOR,
    as_json: JsonOpt = False,
    database_url: DbOpt = None,
) -> None:
    """Publish a local job's export to Ollama (blobs by digest, then create); the job records the name."""
    url, key = ollama_target(host)
    with opened(database_url, fresh=False) as rt:
        outcome = rt.job_service.publish(job_id, name, actor=actor, host=url, api_key=key, system=system,
                                                   base=base)  # fmt: skip
        job = job_row(rt, outcome.job.job_id)
    if as_json:
        return print_json(job)
    out.print(f"Published {name} at {job['published']['host']}; evaluation reaches it at "
              f"{job['published']['chat_url']}.")  # fmt: skip
