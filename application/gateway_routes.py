"""Where the gateway sends a call: the registry's deployed version of the model it names.

The table is the registry view held in memory, reloaded in the background every projection step, so a
call routes with a dictionary lookup and a deploy or rollback moves the next calls once the view has
it, on every worker (each reloads from the shared store). `support-bot@3` pins a version. A model's
fallback is configured on the server: another registered model (its deployed version, or a pinned
one), or `previous`, the version deployed before the current one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.ab_testing import TestConfig
from domain.errors import DomainError, InvalidInput, NotFound
from domain.serving import ServingTarget
from domain.values import path_id

PREVIOUS = "previous"


@dataclass(frozen=True)
class Route:
    model: str
    version: int
    target: ServingTarget | None  # None: the version is not served anywhere

    @property
    def label(self) -> str:
        return f"{self.model}@{self.version}"


class NotRoutable(NotFound):
    """No version answers this model: the detail says which command fixes it."""

    slug = "model-not-routable"
    title = "Model not routable"


def parse_model_ref(value: Any) -> tuple[str, int | None]:
    """`support-bot` or `support-bot@3`; InvalidInput with the rule otherwise."""
    if not isinstance(value, str) or not value:
        raise _invalid("model must be a registered model's name, such as support-bot (support-bot@3 pins version 3)")
    name, at, number = value.partition("@")
    if at and not (number.isdigit() and 0 < int(number) < 2**31):
        raise _invalid(f"model {value[:100]!r}: after '@' comes a version number, such as {name[:64]}@3")
    try:
        name = path_id("model", name)
    except DomainError as e:
        raise _invalid(e.detail) from None
    return name, int(number) if at else None


def _invalid(detail: str) -> InvalidInput:
    return InvalidInput(detail[:300], slug="invalid-model")


class RouteTable:
    """Deployed versions by model, as of `position` of the registry view."""

    def __init__(
        self,
        load: Callable[[], tuple[int, list[dict[str, Any]]]],
        load_version: Callable[[str, int], dict[str, Any] | None],
        fallbacks: Mapping[str, str] | None = None,
        *,
        load_tests: Callable[[], list[tuple[TestConfig, bool]]] | None = None,
    ) -> None:
        self._load, self._load_version, self._load_tests = load, load_version, load_tests
        self._tests: dict[str, tuple[TestConfig, bool]] = {}
        self.fallbacks = dict(fallbacks or {})
        self.position = -1
        self._deployed: dict[str, Route] = {}
        self._previous: dict[str, Route] = {}
        self._pinned: dict[tuple[str, int], Route | None] = {}
        self._changed = threading.Condition()

    def refresh(self) -> int:
        """Reloads the table from the registry view (and the running A/B tests); returns the view's position."""
        if self._load_tests is not None:
            tests: dict[str, tuple[TestConfig, bool]] = {}
            for test, stopped in self._load_tests():  # oldest first: a second test on one model waits its turn
                assert test.gateway_model is not None
                tests.setdefault(test.gateway_model, (test, stopped))
            self._tests = tests
        position, versions = self._load()
        if position == self.position:
            return position
        deployed: dict[str, Route] = {}
        history: dict[str, list[Route]] = {}
        for v in versions:  # per model, in deployment order
            route = Route(v["model"], v["version"], _target(v["serving"]))
            if v["status"] == "DEPLOYED":
                deployed[v["model"]] = route
            else:
                history.setdefault(v["model"], []).append(route)
        previous = {m: routes[-1] for m, routes in history.items() if routes}
        with self._changed:  # swapped whole: a call sees one table or the next, never half of one
            self._deployed, self._previous, self._pinned, self.position = deployed, previous, {}, position
            self._changed.notify_all()
        return position

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Waits until the table reflects the log up to `position` (read-your-writes for a deploy)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.position >= position, timeout)

    def experiment(self, name: str) -> tuple[TestConfig, bool] | None:
        """The running A/B test that splits this model's calls, if any, and whether its challenger is stopped
        (then every call goes to the champion, outside the test)."""
        return self._tests.get(name)

    def deployed(self) -> dict[str, Route]:
        """The models whose deployed version is served somewhere."""
        return {name: route for name, route in self._deployed.items() if route.target is not None}

    def route(self, name: str, version: int | None = None) -> Route:
        if version is not None:
            key = (name, version)
            if key not in self._pinned:
                found = self._load_version(name, version)
                self._pinned[key] = None if found is None else Route(name, version, _target(found["serving"]))
            pinned = self._pinned[key]
            if pinned is None:
                raise NotRoutable(f"Model {name!r} has no version {version}: `ft-cli models list` shows its versions.")
            return self._served(pinned)
        route = self._deployed.get(name)
        if route is None:
            raise NotRoutable(
                f"Model {name!r} has no deployed version, so the gateway has nowhere to send the call: deploy one "
                f"with `ft-cli models deploy {name} VERSION` (or POST /v1/models/{name}/deploy), or pin a version "
                f"as {name}@VERSION."
            )
        return self._served(route)

    def fallback(self, route: Route) -> Route | None:
        """The configured fallback of the route's model, if it serves somewhere other than `route`."""
        configured = self.fallbacks.get(route.model)
        if configured is None:
            return None
        try:
            if configured == PREVIOUS:
                found = self._previous.get(route.model)
                candidate = None if found is None else self._served(found)
            else:
                candidate = self.route(*parse_model_ref(configured))
        except DomainError:
            return None
        return None if candidate is None or candidate == route else candidate

    @staticmethod
    def _served(route: Route) -> Route:
        if route.target is None:
            raise NotRoutable(
                f"Version {route.version} of {route.model!r} has no serving target: set one with `ft-cli models "
                f"set-serving {route.model} --version {route.version} --serve-url URL --serve-model NAME` (or "
                "--serve-upstream NAME)."
            )
        return route


def _target(serving: dict[str, Any] | None) -> ServingTarget | None:
    return None if serving is None else ServingTarget(**serving)
