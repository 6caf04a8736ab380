"""Local training runs: the generated Unsloth/TRL script, its dataset file, and the process that runs it.

The script is rendered from a Jinja2 template (adapters/templates/train_unsloth.py.j2),
readable and runnable on its own. It reports progress as JSON lines on stdout,
which the process's log captures; `read_progress` turns the log into records
the service records as job events. A run is a subprocess in its own process
group, so cancelling ends the script and every worker it started.
"""

from __future__ import annotations

import json
import math
import os
import pprint
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from domain.local_training import CHAT_TEMPLATES, LocalTrainingConfig

TEMPLATES = Path(__file__).parent / "templates"
SCRIPT_NAME = "train.py"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 (Python source, not HTML)
)  # fmt: skip


def render_script(config: LocalTrainingConfig, *, dataset_path: str, output_dir: str, job_id: str | None = None) -> str:
    parts = CHAT_TEMPLATES[config.chat_template]
    return _env.get_template("train_unsloth.py.j2").render(
        config=config, config_json=pprint.pformat(config.as_dict(), sort_dicts=False, width=100),
        dataset_path=dataset_path, output_dir=output_dir, job_id=job_id, script_name=SCRIPT_NAME,
        parts=parts, jinja_chat_template=parts["jinja"],
    )  # fmt: skip


@dataclass(frozen=True)
class RunFiles:
    folder: Path

    @property
    def script(self) -> Path:
        return self.folder / SCRIPT_NAME

    @property
    def dataset(self) -> Path:
        return self.folder / "train.jsonl"

    @property
    def log(self) -> Path:
        return self.folder / "train.log"

    @property
    def output(self) -> Path:
        return self.folder / "output"


def write_run(folder: Path, config: LocalTrainingConfig, dataset: bytes, *, job_id: str) -> RunFiles:
    files = RunFiles(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files.dataset.write_bytes(dataset)
    files.script.write_text(render_script(config, dataset_path=str(files.dataset), output_dir=str(files.output),
                                          job_id=job_id))  # fmt: skip
    return files


def start(files: RunFiles, *, python: str | None = None, env: dict[str, str] | None = None) -> int:
    """Starts the script in its own process group, its stdout and stderr appended to the log; returns the pid."""
    with open(files.log, "ab") as log:
        process = subprocess.Popen(
            [python or sys.executable, str(files.script)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=files.folder, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip
    return process.pid


def alive(pid: int, script: Path | None = None) -> bool:
    """Whether the process runs (a finished child that nobody waited for counts as ended), and, when
    `script` is given, runs that script (after a restart, its pid may belong to someone else by now)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:  # not our child (we restarted): ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _zombie(pid):
        return False
    if script is not None:
        try:
            return str(script).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
    return True


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int) -> None:
    """Ends the run's whole process group (the script and whatever it started)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def read_progress(log: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The progress records written since `offset` (bytes), and the new offset: whole lines only."""
    if not log.exists():
        return [], offset
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    records = []
    for raw in data[:end].splitlines():
        start = raw.rfind(b'{"event"')  # a progress bar on stderr may share the line (it ends with \r, not \n)
        if start >= 0:
            try:
                records.append(json.loads(raw[start:]))
            except json.JSONDecodeError:
                continue
    return records, offset + end


def log_tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def parameter_count(model: str) -> int | None:
    """A model's parameters: exact from a local folder's safetensors headers, else read off its name
    (`Llama-3.2-1B` -> 1e9, `SmolLM-135M` -> 1.35e8); None when neither says."""
    folder = Path(model).expanduser()
    shards = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if shards:
        total = 0
        for shard in shards:
            with open(shard, "rb") as f:
                header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        return total
    name = model.rsplit("/", 1)[-1]
    found = re.search(r"(\d+(?:\.\d+)?)\s*([BbMm])(?![a-z])", name)
    if found is None:
        return None
    return int(float(found.group(1)) * (1e9 if found.group(2) in "Bb" else 1e6))
