"""What every ft-cli command shares: options, output, errors, opening the store, and the command sets
that the root app (api/cli/app.py) turns into groups, top-level names and old aliases.

Only light modules are imported here: a command module imports this at start-up, so the runtime,
the HTTP stack and the statistics stay unloaded until a command that needs them runs.
"""

from __future__ import annotations

import functools
import getpass
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from domain.errors import DomainError
from domain.values import given_time, stored_time
from projections.rows import format_ts

if TYPE_CHECKING:
    from rich.console import Console

    from api.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])


class LazyConsole:
    """rich's Console, made when first used: a --json run prints without loading rich (tens of ms)."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        """The Console itself, for what takes one (Live, Progress)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rich, name)


out = LazyConsole()
err = LazyConsole(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who acts (default: the OS user).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why: kept in the audit trail.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="FT_DATABASE_URL", help="sqlite:///PATH or postgresql://...", show_default=False
    ),
]
# Negative numbers must reach our validation (a clear message), not click's option parser.
NUMBERS_AS_ARGS = {"ignore_unknown_options": True}


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (some containers)
        return "unknown"


DEFAULT_ACTOR = _default_actor()


# ------------------------------------------------------------------ errors

#: HTTP routes that messages shared with the HTTP API name, and the ft-cli command that does the same
CLI_FOR_ROUTE = {
    "POST /v1/datasets": "`ft-cli prepare-dataset`",
    "GET /v1/datasets": "`ft-cli datasets list`",
    "POST /v1/ab-tests": "`ft-cli setup-ab-test`",
    "GET /v1/ab-tests": "`ft-cli ab list`",
    "POST /v1/prices": "`ft-cli prices set`",
    "GET /v1/prices": "`ft-cli prices list`",
    "GET /v1/evaluations": "`ft-cli evals list`",
    "POST /v1/evaluations": "`ft-cli evaluate-model`",
    "GET /v1/jobs": "`ft-cli jobs list`",
    "POST /v1/jobs": "`ft-cli create-openai-job`",
    "GET /v1/models": "`ft-cli list-models`",
    "POST /v1/models": "`ft-cli register-model`",
    "GET /v1/projections": "`ft-cli projections status`",
}
_ROUTE = r"(?:GET|POST|PUT|PATCH|DELETE) /v1/[\w./{}-]*\w"
_ALTERNATIVE_ROUTE = re.compile(rf"(?:\s*\(or {_ROUTE}\)|,? or {_ROUTE}| / `?{_ROUTE}`?)")


def cli_message(detail: str) -> str:
    """A message shared with the HTTP API, as the CLI says it: it names ft-cli commands, not routes.
    "build one with `ft-cli prepare-dataset` (or POST /v1/datasets)" loses the route; a route alone
    becomes its command."""
    if "ft-cli " in detail:
        detail = _ALTERNATIVE_ROUTE.sub("", detail)
    return re.sub(_ROUTE, lambda m: CLI_FOR_ROUTE.get(m.group(0), m.group(0)), detail)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Prints one line on stderr; raise what it returns."""
    err.print(f"error: {cli_message(message)}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _expected_failure(e: Exception) -> str | None:
    """The one-line reason of a failure a user can act on; None for a bug (it propagates)."""
    # Imported here, not at start-up: these modules are only needed once something failed.
    from eventsourcing.persistence import OperationalError, PersistenceError
    from pydantic import ValidationError

    from adapters.store import StoreConfigError
    from api.runtime import SchemaMissing
    from api.settings import settings_error_message

    if isinstance(e, StoreConfigError | SchemaMissing):
        return str(e)
    if isinstance(e, ValidationError):
        return settings_error_message(e)
    if isinstance(e, OperationalError | PersistenceError):
        return f"the store is unavailable ({e}); nothing was recorded"
    return None


def handles_errors(fn: F) -> F:
    """Turns every expected failure into one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DomainError as e:
            raise fail(e.detail) from None
        except typer.Exit:
            raise
        except Exception as e:
            reason = _expected_failure(e)
            if reason is None:
                raise
            raise fail(reason) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    name: str
    callback: Callable[..., Any]  # with the error handling
    settings: dict[str, Any]  # typer's command keywords (context_settings, ...)


@dataclass
class Commands:
    """A module's commands, by their name in its group; the root app decides where they appear."""

    commands: dict[str, Command] = field(default_factory=dict)

    def command(self, name: str, **settings: Any) -> Callable[[F], F]:
        def collect(fn: F) -> F:
            self.commands[name] = Command(name, handles_errors(fn), settings)
            return fn

        return collect

    def __getitem__(self, name: str) -> Command:
        return self.commands[name]

    def add_to(self, app: typer.Typer) -> None:
        for c in self.commands.values():
            app.command(c.name, **c.settings)(c.callback)


# ------------------------------------------------------------------- store


@contextmanager
def opened(database_url: str | None, *, fresh: bool = True, **options: Any) -> Iterator[Runtime]:
    """Opens the store; `fresh` brings the projections up to date before reading."""
    from api.runtime import Runtime

    runtime = Runtime.open(database_url, **options)
    try:
        if fresh:
            runtime.engine.catch_up()
        yield runtime
    finally:
        runtime.close()


def ollama_target(host: str | None) -> tuple[str, str | None]:
    """Ollama's URL and key for --host. The CLI runs as the user: a configured endpoint's name (none: the
    `ollama` endpoint, from OLLAMA_HOST) gives that endpoint; anything else is Ollama's address as the
    `ollama` client takes it, with the user's own OLLAMA_API_KEY."""
    from api.settings import ProviderSettings, pick_endpoint

    providers = ProviderSettings()
    endpoints = providers.outbound_endpoints
    if host is None or host in endpoints:
        found = pick_endpoint(endpoints, host or "ollama", field="--host", kind="ollama")
        return found.base_url, found.key
    return host, providers.ollama_api_key.get_secret_value() if providers.ollama_api_key else None


# ------------------------------------------------------------------ output


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_ts(value)
    raise TypeError(type(value).__name__)


# times and dataclasses go to _json_default, as with json.dumps
_ORJSON = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ORJSON |= orjson.OPT_PASSTHROUGH_DATACLASS


def to_json(data: Any) -> str:
    """Indented JSON, as json.dumps(indent=2) writes it (orjson: 1,000 deployments in 0.5 ms, not 34;
    a float may read 1e-5 for 1e-05). Non-ASCII text, or a value orjson refuses (an int past 64 bits),
    goes through the standard library, which escapes and accepts them."""
    try:
        text: bytes | None = orjson.dumps(data, default=_json_default, option=_ORJSON)
    except TypeError:  # orjson.JSONEncodeError
        text = None
    if text is not None and text.isascii():
        return text.decode()
    return json.dumps(data, default=_json_default, indent=2)


def print_json(data: Any) -> None:
    typer.echo(to_json(data))


def money(value: Any) -> str:
    """USD for people: -$0.0005, $1,234.57; under a cent, two significant digits ($0.00036). JSON keeps exact values."""
    if value is None:
        return ""
    amount = Decimal(str(value))
    if not amount.is_finite():
        return str(amount)
    sign, size = "-" if amount < 0 else "", abs(amount)
    places = 2 if size >= 1 or size == 0 else max(2, 1 - size.adjusted())  # cents, or 2 significant digits
    rounded = size.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    places = max(2, -rounded.normalize().as_tuple().exponent) if rounded else 2  # no trailing zeros past cents
    return f"{sign}${rounded:,.{places}f}"


def day_count(value: Any) -> str:
    """A number of days for people, to one decimal."""
    return "" if value is None else f"{Decimal(str(value)):,.1f}"


def percent(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    out.print(t)


# ------------------------------------------------------------------- input


def parse_datetime(value: str, option: str) -> datetime:
    """ISO 8601 (a time without an offset is taken as UTC), as UTC: the kernel's one reading."""
    return given_time(option, value)


def parse_time(value: str | None, option: str) -> str | None:
    """A time option as stored times are written, for comparing with them."""
    return stored_time(option, value)
