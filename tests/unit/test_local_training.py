"""Local training, pure parts: the configuration's rules, the training-time estimate and the generated script."""

from __future__ import annotations

import difflib

import pytest

from adapters.unsloth import parameter_count, render_script
from domain.errors import InvalidInput
from domain.local_training import LocalTrainingConfig
from domain.training_time import Calibration, estimate_training_time, hardware

REAL = "unsloth/Llama-3.2-1B-Instruct-bnb-4bit"


def test_the_defaults_are_unsloths_usual_lora_settings() -> None:
    c = LocalTrainingConfig.validate(base_model=REAL)
    assert (c.chat_template, c.lora_r, c.lora_alpha, c.load_in_4bit, c.epochs, c.max_steps, c.export) == (
        "llama-3.1", 16, 16, True, 1, None, "merged_16bit")
    assert LocalTrainingConfig.validate(base_model="./models/mine", max_steps=60).epochs is None


@pytest.mark.parametrize(("settings", "message"), [
    ({"base_model": "llama"}, "neither a model name"),
    ({"chat_template": "alpaca"}, "Unknown chat template 'alpaca'"),
    ({"max_seq_length": 16}, "max_seq_length must be a whole number from 32"),
    ({"lora_dropout": 1.5}, "lora_dropout must be from 0.0 up to 0.9"),
    ({"epochs": 2, "max_steps": 10}, "Give either epochs or max_steps"),
    ({"export": "onnx"}, "Unknown export 'onnx'"),
    ({"export": "lora", "quantization": "q4_k_m"}, "quantization applies to the gguf export only"),
    ({"target_modules": []}, "Unknown LoRA target modules"),
])  # fmt: skip
def test_a_bad_setting_is_refused_with_what_to_use_instead(settings: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        LocalTrainingConfig.validate(**({"base_model": REAL} | settings))


def test_the_flops_estimate_is_six_times_parameters_times_tokens_over_peak_and_utilisation() -> None:
    e = estimate_training_time(parameters=1_000_000_000, tokens=1_000_000, epochs=3, hardware_name="A100")
    assert e.training_flops == 6 * 1e9 * 3e6
    assert e.seconds == pytest.approx(1.8e16 / (312e12 * 0.40))
    assert "A100 datasheet" in e.detail and hardware("h100").name == "H100"
    with pytest.raises(InvalidInput, match="Unknown hardware 'TPU'"):
        hardware("TPU")


def test_a_calibrated_estimate_scales_the_measured_throughput_and_keeps_the_start_up_time() -> None:
    measured = Calibration(tokens=10_000, train_seconds=2.0, wall_seconds=7.0)
    e = estimate_training_time(parameters=1, tokens=20_000, epochs=1, hardware_name="CPU", calibration=measured)
    assert (e.method, e.seconds) == ("calibrated", 5.0 + 4.0)


def test_parameters_are_read_off_the_model_name_when_there_is_no_local_folder() -> None:
    assert parameter_count(REAL) == 1_000_000_000
    assert parameter_count("unsloth/mistral-7b-instruct-v0.3-bnb-4bit") == 7_000_000_000
    assert parameter_count("HuggingFaceTB/SmolLM2-135M-Instruct") == 135_000_000
    assert parameter_count("org/no-size-here") is None


def test_the_script_for_a_real_unsloth_model_compiles_and_uses_the_current_api() -> None:
    config = LocalTrainingConfig.validate(base_model=REAL, max_steps=60)
    script = render_script(config, dataset_path="/data/train.jsonl", output_dir="/runs/job-1/output", job_id="job-1")
    compile(script, "train.py", "exec")
    for name in ("FastLanguageModel.from_pretrained(", "FastLanguageModel.get_peft_model(", "get_chat_template(",
                 "train_on_responses_only(", "SFTTrainer(", "processing_class=tokenizer", "SFTConfig(",
                 'max_length=CONFIG["max_seq_length"]', "save_pretrained_merged(", "save_pretrained_gguf("):
        assert name in script, name
    assert "max_seq_length=CONFIG" not in script.split("def sft_config")[1].split("def with_unsloth")[0]
    assert "'base_model': 'unsloth/Llama-3.2-1B-Instruct-bnb-4bit'" in script
    constants: dict = {}
    exec(script.split("import torch")[0].split("import time")[1], constants)  # the settings block only
    assert constants["RESPONSE_PART"] == "<|start_header_id|>assistant<|end_header_id|>\n\n"  # llama-3.1's marker


def test_the_tiny_model_runs_the_same_template_and_only_the_model_path_differs() -> None:
    settings = {"chat_template": "chatml", "max_steps": 8, "load_in_4bit": False}
    real = render_script(LocalTrainingConfig.validate(base_model="unsloth/Qwen2.5-0.5B-Instruct", **settings),
                         dataset_path="/d.jsonl", output_dir="/o")  # fmt: skip
    tiny = render_script(LocalTrainingConfig.validate(base_model="/tmp/tiny-llama", **settings),
                         dataset_path="/d.jsonl", output_dir="/o")  # fmt: skip
    changed = [line for line in difflib.unified_diff(real.splitlines(), tiny.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]  # fmt: skip
    assert changed and all("Qwen2.5-0.5B-Instruct" in line or "/tmp/tiny-llama" in line for line in changed)


@pytest.mark.parametrize(("template", "family", "stop"), [
    ("llama-3.1", "llama3", "<|eot_id|>"), ("mistral", "mistral", "[/INST]"), ("qwen-2.5", "chatml", "<|im_end|>"),
])  # fmt: skip
def test_a_modelfile_follows_ollamas_syntax_for_each_family(template: str, family: str, stop: str) -> None:
    from pathlib import Path

    from adapters.ollama import GO_TEMPLATES, Export, modelfile

    text = modelfile(Export("merged_16bit", Path("/runs/job-1/output/merged_16bit")), template, system="Be brief.")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM ./merged_16bit"
    assert f'TEMPLATE """{GO_TEMPLATES[family]}"""' in text
    assert f'PARAMETER stop "{stop}"' in text and 'SYSTEM """Be brief."""' in text
    lora = modelfile(Export("lora", Path("/o/lora")), template, base="llama3.2:1b")
    assert lora.splitlines()[1:3] == ["FROM llama3.2:1b", "ADAPTER ./lora"]
    with pytest.raises(InvalidInput, match="needs the base model"):
        modelfile(Export("lora", Path("/o/lora")), template)
    with pytest.raises(InvalidInput, match="Unknown chat template"):
        modelfile(Export("merged_16bit", Path("/o/m")), "alpaca")
