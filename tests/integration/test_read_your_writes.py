"""Runtime.command and Runtime.current: the one place a command's events reach this process's projections."""

from __future__ import annotations

import logging

import pytest

from api.runtime import Runtime
from application.registry import VersionRegistered
from projections.registry import get_version

VERSION = {"base_model": "gpt-4o-mini-2024-07-18", "job_id": "ftjob-1", "dataset_size": 10}


def register(rt: Runtime, name: str = "support-bot") -> VersionRegistered:
    return rt.versions.register(name, actor="alice", **VERSION)


def test_a_command_is_readable_as_soon_as_it_returns(runtime: Runtime) -> None:
    r = runtime.command(lambda: register(runtime))
    assert get_version(runtime.db, "support-bot", r.number) is not None


def test_a_catch_up_that_fails_after_a_command_is_a_warning_not_a_failure(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def down(position: int) -> None:
        raise OSError("views file unavailable")

    monkeypatch.setattr(runtime.engine, "reach", down)
    with caplog.at_level(logging.WARNING, logger="api.runtime"):
        r = runtime.command(lambda: register(runtime))
    assert r.recorded.position > 0  # the command committed and answers it
    assert "projections did not catch up after a command: OSError: views file unavailable" in caplog.text


def test_a_bulk_command_wakes_the_follower_instead_of_waiting(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    woken: list[bool] = []
    monkeypatch.setattr(runtime.engine, "reach", lambda position: pytest.fail("a bulk command must not wait"))
    monkeypatch.setattr(runtime.engine, "poke", lambda: woken.append(True))
    runtime.command(lambda: register(runtime), settle=False)
    assert woken == [True]


def test_current_sees_what_another_process_recorded(runtime: Runtime, database_url: str) -> None:
    other = Runtime.open(database_url)
    try:
        register(other, "elsewhere")
    finally:
        other.close()
    assert get_version(runtime.db, "elsewhere", 1) is None
    runtime.current()
    assert get_version(runtime.db, "elsewhere", 1) is not None
