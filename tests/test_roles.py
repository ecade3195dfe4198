"""Which loops run where (ledger/roles.py), settings read once and handed on, and the
API's shared objects injected rather than reached for. No servers needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import settings as handing
from api.app import create_app
from api.settings import ApiSettings, api_settings, hand_over, handed_over
from ledger import roles
from ledger.roles import Loops, Plan
from ledger.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EVERY_LOOP = Loops(projector=True, relay=True, webhooks=True)


@pytest.mark.parametrize(("role", "workers", "expected"), [
    # One process: the API runs the projector (and expiry) on its pool, the others beside it.
    ("all", 1, Plan(api_workers=1, api_projector=True, loops=Loops(relay=True, webhooks=True))),
    # API worker processes, and one process apart for every loop: none runs once per worker.
    ("all", 4, Plan(api_workers=4, api_projector=False, loops=EVERY_LOOP)),
    ("api", 1, Plan(api_workers=1, api_projector=False, loops=Loops())),
    ("api", 3, Plan(api_workers=3, api_projector=False, loops=Loops())),
    ("projector", 1, Plan(api_workers=0, api_projector=False, loops=Loops(projector=True))),
    ("projector", 8, Plan(api_workers=0, api_projector=False, loops=Loops(projector=True))),
    ("relay", 2, Plan(api_workers=0, api_projector=False, loops=Loops(relay=True))),
    ("webhooks", 1, Plan(api_workers=0, api_projector=False, loops=Loops(webhooks=True))),
])
def test_each_role_runs_its_loops_in_the_processes_the_plan_names(role, workers, expected):
    plan = roles.plan(role, workers)
    assert plan == expected
    assert plan.loops_apart == (plan.api_workers > 1)


@pytest.mark.parametrize("role", roles.ROLES)
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_every_loop_a_role_asks_for_runs_exactly_once(role, workers):
    plan = roles.plan(role, workers)
    projectors = plan.loops.projector + plan.api_projector
    assert projectors == (role in ("all", "projector"))
    assert plan.loops.relay == (role in ("all", "relay"))
    assert plan.loops.webhooks == (role in ("all", "webhooks"))
    assert bool(plan.api_workers) == (role in ("all", "api"))


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        roles.plan("everything", 1)


def test_the_api_gets_the_settings_read_once_and_its_worker_processes_the_same(monkeypatch):
    settings = Settings.from_env({
        "LEDGER_DB_POOL_MAX": "7", "LEDGER_RATE_LIMIT": "99", "LEDGER_RATE_LIMIT_UNIT": "second",
        "LEDGER_WEBHOOK_ALLOW_PRIVATE": "1", "LEDGER_LOG_FORMAT": "json",
    })
    api = api_settings(settings, "postgresql://db/ledger", "nats://n:4222", run_projector=True)
    assert (api.pool_max, api.rate_limit, api.rate_limit_unit) == (7, 99, "second")
    assert api.webhooks.allow_private is True and api.run_projector is True
    assert (api.database_url, api.nats_url) == ("postgresql://db/ledger", "nats://n:4222")

    monkeypatch.setenv(handing.HANDED_OVER, "")  # hand_over writes the environment: monkeypatch undoes it
    hand_over(api, settings.log_format)
    assert handed_over() == (api, "json")


def test_only_the_settings_read_the_environment_and_no_route_reaches_into_the_app_state():
    # The exceptions: prometheus-client's own variable, and the settings handed to API
    # worker processes (api/settings.py). consumers/ reads its own (WebhookSettings.from_env).
    allowed = {"ledger/settings.py", "ledger/embedded.py", "ledger/cli.py", "api/settings.py", "api/metrics.py"}
    environment = re.compile(r"os\.environ|getenv\(")
    app_state = re.compile(r"\.app\.state|\[\"app\"\]\.state")
    for path in [*ROOT.joinpath("api").rglob("*.py"), *ROOT.joinpath("ledger").rglob("*.py")]:
        name, text = str(path.relative_to(ROOT)), path.read_text()
        if name not in allowed:
            assert not environment.search(text), f"{name} reads the environment"
        if name != "api/shared.py":  # of_scope: the one read, for middleware
            assert not app_state.search(text), f"{name} reaches into the app's state"


def test_injected_objects_are_no_parameters_of_the_openapi_document():
    app = create_app(ApiSettings(database_url="postgresql://unused"))
    injected = set(app.dependencies)
    assert {"pool", "store", "reads", "key_cache", "nats", "settings", "webhook_settings"} <= injected
    document = app.openapi_schema.to_schema()
    named = {p["name"] for path in document["paths"].values() for operation in path.values()
             if isinstance(operation, dict) for p in operation.get("parameters", [])}
    assert named and not named & injected
