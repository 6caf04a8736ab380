"""Local fine-tuning (Unsloth, or plain TRL where Unsloth cannot run): its configuration,
checked with messages a user can act on, and the chat-template families it knows."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from domain.errors import InvalidInput

_LLAMA3 = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
           "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
_CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
           "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
           "{% endif %}")
_MISTRAL = ("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
            "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            "{{ message['content'] + eos_token }}{% endif %}{% endfor %}")
#: Unsloth's names for chat templates: the markers that split a prompt from its answer (for training on
#: responses only), Ollama's template family, and a Jinja chat template for a tokenizer that has none.
CHAT_TEMPLATES: dict[str, dict[str, str]] = {
    "llama-3.1": {"instruction": "<|start_header_id|>user<|end_header_id|>\n\n",
                  "response": "<|start_header_id|>assistant<|end_header_id|>\n\n", "ollama": "llama3",
                  "jinja": _LLAMA3},
    "llama-3": {"instruction": "<|start_header_id|>user<|end_header_id|>\n\n",
                "response": "<|start_header_id|>assistant<|end_header_id|>\n\n", "ollama": "llama3", "jinja": _LLAMA3},
    "mistral": {"instruction": "[INST]", "response": "[/INST]", "ollama": "mistral", "jinja": _MISTRAL},
    "chatml": {"instruction": "<|im_start|>user\n", "response": "<|im_start|>assistant\n", "ollama": "chatml",
               "jinja": _CHATML},
    "qwen-2.5": {"instruction": "<|im_start|>user\n", "response": "<|im_start|>assistant\n", "ollama": "chatml",
                 "jinja": _CHATML},
}  # fmt: skip
EXPORTS = ("lora", "merged_16bit", "gguf")
GGUF_QUANTIZATIONS = ("q4_k_m", "q5_k_m", "q8_0", "f16")
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: an Unsloth or Hugging Face name (org/model), or a local folder
MODEL_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return value


def _float(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number, got {value!r}.")
    if value > high or value < low or (low_open and value == low):
        bound = f"more than {low}" if low_open else f"from {low}"
        raise InvalidInput(f"{name} must be {bound} up to {high}, got {value}.")
    return float(value)


@dataclass(frozen=True)
class LocalTrainingConfig:
    base_model: str
    chat_template: str = "llama-3.1"
    max_seq_length: int = 2048
    load_in_4bit: bool = True
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = TARGET_MODULES
    epochs: int | None = 1
    max_steps: int | None = None
    learning_rate: float = 2e-4
    batch_size: int = 2
    gradient_accumulation: int = 4
    seed: int = 3407
    train_on_responses_only: bool = True
    export: str = "merged_16bit"
    quantization: str | None = None

    @classmethod
    def validate(cls, **values: Any) -> LocalTrainingConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise InvalidInput(f"Unknown training settings: {', '.join(sorted(unknown))}; known: "
                               f"{', '.join(sorted(known))}.")  # fmt: skip
        v = {k: val for k, val in values.items() if val is not None}
        base = v.get("base_model")
        if not isinstance(base, str) or not (MODEL_NAME.fullmatch(base) or base.startswith(("/", "./", "~"))):
            raise InvalidInput(
                f"base_model {base!r} is neither a model name like unsloth/Llama-3.2-1B-Instruct-bnb-4bit "
                "nor a local path (start it with / or ./)."
            )
        template = v.get("chat_template", "llama-3.1")
        if template not in CHAT_TEMPLATES:
            raise InvalidInput(f"Unknown chat template {template!r}: use one of {', '.join(CHAT_TEMPLATES)}.")
        modules = tuple(v.get("target_modules", TARGET_MODULES))
        bad = [m for m in modules if m not in TARGET_MODULES]
        if not modules or bad:
            raise InvalidInput(f"Unknown LoRA target modules {bad or modules!r}: use some of "
                               f"{', '.join(TARGET_MODULES)}.")  # fmt: skip
        epochs, max_steps = v.get("epochs", 1 if "max_steps" not in v else None), v.get("max_steps")
        if (epochs is None) == (max_steps is None):
            raise InvalidInput("Give either epochs or max_steps, not both.")
        export = v.get("export", "merged_16bit")
        if export not in EXPORTS:
            raise InvalidInput(f"Unknown export {export!r}: use lora, merged_16bit or gguf.")
        quantization = v.get("quantization")
        if export == "gguf" and quantization not in GGUF_QUANTIZATIONS:
            raise InvalidInput(f"A gguf export needs a quantization: one of {', '.join(GGUF_QUANTIZATIONS)}.")
        if export != "gguf" and quantization is not None:
            raise InvalidInput("quantization applies to the gguf export only.")
        return cls(
            base_model=base,
            chat_template=template,
            max_seq_length=_int("max_seq_length", v.get("max_seq_length", 2048), 32, 131_072),
            load_in_4bit=bool(v.get("load_in_4bit", True)),
            lora_r=_int("lora_r", v.get("lora_r", 16), 1, 512),
            lora_alpha=_int("lora_alpha", v.get("lora_alpha", 16), 1, 1024),
            lora_dropout=_float("lora_dropout", v.get("lora_dropout", 0.0), 0.0, 0.9),
            target_modules=modules,
            epochs=None if epochs is None else _int("epochs", epochs, 1, 100),
            max_steps=None if max_steps is None else _int("max_steps", max_steps, 1, 1_000_000),
            learning_rate=_float("learning_rate", v.get("learning_rate", 2e-4), 0.0, 1.0, low_open=True),
            batch_size=_int("batch_size", v.get("batch_size", 2), 1, 1024),
            gradient_accumulation=_int("gradient_accumulation", v.get("gradient_accumulation", 4), 1, 1024),
            seed=_int("seed", v.get("seed", 3407), 0, 2**31 - 1),
            train_on_responses_only=bool(v.get("train_on_responses_only", True)),
            export=export,
            quantization=quantization,
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d
