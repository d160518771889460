"""deploy/ checked as far as a machine without Docker or a cluster can: `promtool` on the Prometheus
config, rules and rule tests; every metric that the dashboard and the alerts query, and every label
they select or group by, against what a running app really exports on /metrics; the compose file and
the Kubernetes manifests parsed, cross-checked with each other and the settings, and the manifests
validated against the Kubernetes schemas.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import msgspec
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bus.errors import Refusal
from shopstream.auth import check_listener
from shopstream.bootstrap import product_modules
from shopstream.ratelimit import Rate
from shopstream.settings import Settings
from tests.apps import app_client, eventually

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")
KUBERNETES_VERSION = "1.30.0"
# Labels Prometheus adds to every scraped series (deploy/prometheus/prometheus.yml sets `service`).
TARGET_LABELS = {"instance", "job", "service"}

Exported = dict[str, set[str]]  # series name (as queried) -> label names seen on it


def load(relative: str) -> Any:
    return yaml.safe_load((DEPLOY / relative).read_text())


def load_all(relative: str) -> list[Any]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / relative).read_text()) if doc]


# --- Prometheus -------------------------------------------------------------------------------------


@pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: install Debian's `prometheus` package (.ci/run does)"
)
@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "prometheus/prometheus.yml"],
        ["check", "rules", "prometheus/alerts.yml"],
        ["test", "rules", "prometheus/alerts_test.yml"],
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(args: list[str]) -> None:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load("prometheus/alerts.yml")["groups"] for rule in group["rules"]]


def test_every_alert_has_a_severity_a_delay_and_a_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "ShopStreamOutboxBacklogStale",
        "ShopStreamConsumerLagHigh",
        "ShopStreamEndToEndLagHigh",
        "ShopStreamDeadLettersPresent",
        "ShopStreamHttp5xxRatioHigh",
        "ShopStreamCommandErrorRatioHigh",
        "ShopStreamWorkerDown",
    }
    tested = {
        case["alertname"]
        for test in load("prometheus/alerts_test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
    }
    for rule in rules:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no case in alerts_test.yml"


def subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_command_failures_leave_out_every_refusal() -> None:
    """A refused request (4xx, its error class as outcome) is the client's doing, not a failure."""
    (rule,) = [r for r in alert_rules() if r["alert"] == "ShopStreamCommandErrorRatioHigh"]
    failure = re.compile(re.findall(r'outcome=~"([^"]+)"', rule["expr"])[0])  # PromQL anchors regexes
    assert {module.name for module in product_modules()} == {"identity", "catalogue"}  # their errors loaded
    refusals = {cls.__name__ for cls in subclasses(Refusal)}
    assert {"NotFound", "EmailAlreadyRegistered", "SkuTaken"} <= refusals
    assert not [name for name in sorted(refusals) if failure.fullmatch(name)]
    for outcome in ("conflict", "PostgresConnectionError", "TimeoutError", "ExceptionGroup"):
        assert failure.fullmatch(outcome), outcome
    assert not failure.fullmatch("ok")


# --- queries against the exported metrics -----------------------------------------------------------


@pytest.fixture(scope="module")
async def exported(settings: Settings) -> Exported:
    """Series names and their label names from GET /metrics of the app after one command went the
    whole way (HTTP, command, outbox, relay, consumers), so every family has its series."""
    async with app_client(settings) as client:
        unique = uuid.uuid4().hex[:12]
        created = await client.post(
            "/customers",
            json={
                "external_id": f"deploy-{unique}",
                "email": f"deploy.{unique}@example.com",
                "first_name": "Grace",
                "last_name": "Hopper",
            },
        )
        assert created.status_code == 201, created.text
        await eventually(client, f"/customers/{created.json()['customer_id']}", 1)
        assert (await client.get(f"/customers/{uuid.uuid4()}")).status_code == 404
        text = (await client.get("/metrics")).text
    series: Exported = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        for name in (family.name, *(family.name + s for s in suffixes.get(family.type, ()))):
            series.setdefault(name, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
            series[family.name].update(sample.labels)
    return series


_METRIC = re.compile(r"\b(shopstream_[A-Za-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b(shopstream_[A-Za-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def unknown_names(expr: str, legend: str, exported: Exported) -> list[str]:
    """What a PromQL expression (and its legend) refers to that the app does not export."""
    problems: list[str] = []
    metrics = set(_METRIC.findall(expr))
    problems += [f"metric {m}" for m in sorted(metrics) if m not in exported]
    # Label names show only on series: every family is promised series from the start (at zero).
    problems += [f"no series of {m}" for m in sorted(metrics) if m in exported and not exported[m]]
    for metric, matchers in _SELECTOR.findall(expr):
        known = exported.get(metric, set())
        problems += [
            f"label {label} of {metric}" for label in _MATCHER.findall(matchers) if label not in known
        ]
    available = set().union(*(exported.get(m, set()) for m in metrics)) | TARGET_LABELS
    grouped = {
        label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()
    }
    problems += [f"label {label} in by/on" for label in sorted(grouped - available)]
    problems += [f"legend label {label}" for label in _LEGEND.findall(legend) if label not in available]
    return problems


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana/dashboards/shopstream.json").read_text())


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))  # a collapsed row keeps its panels inside


def queried_panels() -> list[dict[str, Any]]:
    return [panel for panel in all_panels(dashboard()["panels"]) if panel["type"] != "row"]


@pytest.mark.anyio
async def test_dashboard_queries_only_exported_metrics(exported: Exported) -> None:
    problems = [
        f"panel {panel['title']!r} {target['refId']}: {problem}"
        for panel in queried_panels()
        for target in panel["targets"]
        for problem in unknown_names(target["expr"], target.get("legendFormat", ""), exported)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.anyio
async def test_alerts_query_only_exported_metrics(exported: Exported) -> None:
    problems = [
        f"alert {rule['alert']}: {problem}"
        for rule in alert_rules()
        for problem in unknown_names(rule["expr"], "", exported)
    ]
    assert not problems, "\n".join(problems)


def test_the_checks_see_through_wrong_names() -> None:
    exported = {"shopstream_x_total": {"context", "outcome"}, "shopstream_y_bucket": {"consumer", "le"}}

    def check(expr: str, legend: str = "") -> list[str]:
        return unknown_names(expr, legend, exported)

    assert check('sum by (context) (rate(shopstream_x_total{outcome="ok"}[5m]))', "{{context}}") == []
    assert check("histogram_quantile(0.99, sum by (consumer, le) (rate(shopstream_y_bucket[5m])))") == []
    assert check("rate(shopstream_z_total[5m])") == ["metric shopstream_z_total"]
    assert check('shopstream_x_total{status="5xx"}') == ["label status of shopstream_x_total"]
    assert check("sum by (path) (shopstream_x_total)", "{{route}}") == [
        "label path in by/on",
        "legend label route",
    ]
    assert unknown_names("shopstream_w", "", {"shopstream_w": set()}) == ["no series of shopstream_w"]


# --- Grafana ----------------------------------------------------------------------------------------


def datasource() -> dict[str, Any]:
    (source,) = load("grafana/provisioning/datasources/prometheus.yml")["datasources"]
    return source  # type: ignore[no-any-return]


def test_dashboard_lints() -> None:
    board = dashboard()
    uid = datasource()["uid"]
    assert uid and board["uid"] and board["title"]
    panels = list(all_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == ["HTTP", "Commands", "Outbox", "Relay", "Consumers", "Dead letters", "Database pools and processes", "Rate limits"]  # fmt: skip
    for panel in queried_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert target["expr"].strip() and target["refId"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_http_latency_is_shown_by_route_at_three_quantiles() -> None:
    (latency,) = [p for p in queried_panels() if p["title"].startswith("Latency")]
    exprs = [t["expr"] for t in latency["targets"]]
    for quantile in ("0.5", "0.95", "0.99"):
        assert any(e.startswith(f"histogram_quantile({quantile}, sum by (path, le)") for e in exprs), quantile


def test_grafana_provisioning_points_at_the_compose_services() -> None:
    compose = load("compose.yaml")
    source = datasource()
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose["services"]
    (provider,) = load("grafana/provisioning/dashboards/shopstream.yml")["providers"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


# --- compose ----------------------------------------------------------------------------------------

SETTINGS_VARIABLES = {field.encode_name for field in msgspec.structs.fields(Settings)}
SETTINGS_VARIABLES.add("SHOPSTREAM_ADMIN_TOKEN")
SERVER_VARIABLES = {"FORWARDED_ALLOW_IPS"}  # uvicorn's own: whose X-Forwarded-For it believes


def known_variable(name: str) -> bool:
    return name in SETTINGS_VARIABLES or name in SERVER_VARIABLES or name.startswith("OTEL_")


# Compose's interpolation, as far as compose.yaml uses it: ${NAME}, ${NAME:-default}, ${NAME:?message}.
_INTERPOLATED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}")
# What compose must never start without: no default may stand in for them.
SECRETS = {
    "POSTGRES_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "SHOPSTREAM_ADMIN_TOKEN",
    "SHOPSTREAM_JWT_SECRET",
    "SHOPSTREAM_DATA_KEY",
}


class MissingVariable(Exception):
    pass


def interpolate(text: str, environ: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        given = environ.get(name, "")
        if given:
            return given
        if operator == ":?":
            raise MissingVariable(f"{name}: {argument}")
        return argument if operator == ":-" else ""

    return _INTERPOLATED.sub(value, text)


def example_values() -> dict[str, str]:
    lines = (DEPLOY / "shopstream.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def filled() -> dict[str, str]:
    """deploy/shopstream.env as an operator fills it in: every secret set (as the example says to make it)."""
    made = {name: secrets.token_hex(32) for name in SECRETS}
    return (
        example_values() | made | {"SHOPSTREAM_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    )


def test_compose_refuses_to_start_without_each_secret() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = {name: operator for name, operator, _ in _INTERPOLATED.findall(text) if name in SECRETS}
    assert used == dict.fromkeys(SECRETS, ":?"), "a secret without ${NAME:?message}, or with a default"
    example = example_values()
    assert {name: example[name] for name in SECRETS} == dict.fromkeys(SECRETS, "")  # no shared default
    for name in sorted(SECRETS | {"SHOPSTREAM_JWT_ISSUER", "SHOPSTREAM_JWT_AUDIENCE"}):
        with pytest.raises(MissingVariable, match=f"^{name}: set {name} "):
            interpolate(text, {k: v for k, v in filled().items() if k != name})
    with pytest.raises(MissingVariable):
        interpolate(text, example)  # the example as it is, secrets empty
    interpolate(text, filled())


def test_compose_requires_bearer_tokens_and_takes_every_password_from_the_environment() -> None:
    environ = filled()
    services = yaml.safe_load(interpolate((DEPLOY / "compose.yaml").read_text(), environ))["services"]
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert env["SHOPSTREAM_AUTH"] == "jwt", name
        assert "SHOPSTREAM_AUTH_ALLOW_PUBLIC" not in env, name
        assert env["SHOPSTREAM_JWT_SECRET"] == environ["SHOPSTREAM_JWT_SECRET"], name
        assert env["SHOPSTREAM_ADMIN_TOKEN"] == environ["SHOPSTREAM_ADMIN_TOKEN"], name
        assert f":{environ['POSTGRES_PASSWORD']}@postgres:" in env["DATABASE_URL"], name
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        check_listener(settings)  # HOST 0.0.0.0 with tokens required: accepted, keys usable
        assert Rate.parse(settings.rate_limit_reads) and Rate.parse(settings.rate_limit_writes)
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == environ["POSTGRES_PASSWORD"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == environ["GRAFANA_ADMIN_PASSWORD"]
    assert grafana["GF_USERS_ALLOW_SIGN_UP"] == "false"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx  # overwritten: not spoofable


def test_compose_runs_every_part_with_pinned_images() -> None:
    services = load("compose.yaml")["services"]
    assert set(services) >= {
        "postgres", "redis", "migrate", "api", "worker", "loadbalancer",
        "prometheus", "grafana", "otel-collector", "jaeger",
    }  # fmt: skip
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
            continue
        repository, _, tag = image.rpartition(":")
        pinned = repository and tag != "latest" and re.search(r"\d+\.\d+", tag)
        assert pinned, f"{name}: {image} is not pinned to a version"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install --constraint deploy/constraints\.txt \.", dockerfile, re.M)


def test_compose_scales_api_and_workers_and_sends_traces_to_the_collector() -> None:
    compose = load("compose.yaml")
    services = compose["services"]
    api, worker = services["api"], services["worker"]
    assert api["command"] == ["api"]
    assert worker["command"][0] == "worker"
    assert api["deploy"]["replicas"] and worker["deploy"]["replicas"]
    for service in (api, worker):
        env = service["environment"]
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"
        assert re.fullmatch(r"http://otel-collector:43(17|18)", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert env["DATABASE_URL"].split("@")[1].startswith("postgres:")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert all(known_variable(name) for name in env), sorted(n for n in env if not known_variable(n))
        assert "env_file" not in service  # a container gets what compose.yaml names, no other secret
    example = (DEPLOY / "shopstream.env.example").read_text()
    assert re.search(r"^SHOPSTREAM_ADMIN_TOKEN=", example, re.M)
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    (exporter,) = collector["service"]["pipelines"]["traces"]["exporters"]
    assert collector["exporters"][exporter]["endpoint"].split(":")[0] in services
    assert "otlp" in collector["service"]["pipelines"]["traces"]["receivers"]


def test_prometheus_scrapes_every_api_replica_and_worker() -> None:
    services = load("compose.yaml")["services"]
    jobs = {job["job_name"]: job for job in load("prometheus/prometheus.yml")["scrape_configs"]}
    command = services["worker"]["command"]
    expected = {
        "shopstream-api": ("api", int(services["api"]["environment"]["PORT"])),
        "shopstream-worker": ("worker", int(command[command.index("--metrics-port") + 1])),
    }
    for job, (service, port) in expected.items():
        (discovery,) = jobs[job]["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["port"] == port
    assert "alerts.yml" in load("prometheus/prometheus.yml")["rule_files"]
    assert any(a["expr"].startswith('up{job="shopstream-worker"} == 0') for a in alert_rules())


# --- Kubernetes -------------------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    listed = load("k8s/kustomization.yaml")["resources"]
    on_disk = sorted(p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    return [doc for name in listed for doc in load_all(f"k8s/{name}")]


def test_kubernetes_manifests_pass_the_schema_check() -> None:
    documents = manifests()
    for document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{document['kind']}/{document['metadata']['name']}"
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert kinds >= {
        ("Deployment", "shopstream-api"),
        ("Deployment", "shopstream-worker"),
        ("Service", "shopstream-api"),
        ("ConfigMap", "shopstream"),
        ("Secret", "shopstream"),
    }


def test_kubernetes_probes_and_configuration() -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d for d in manifests()}
    (api,) = documents["Deployment", "shopstream-api"]["spec"]["template"]["spec"]["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["readinessProbe"]["timeoutSeconds"] == 1
    (worker,) = documents["Deployment", "shopstream-worker"]["spec"]["template"]["spec"]["containers"]
    port = int(worker["args"][worker["args"].index("--metrics-port") + 1])
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"metrics": port}
    assert worker["livenessProbe"]["httpGet"]["port"] == "metrics"
    service = documents["Service", "shopstream-api"]["spec"]
    assert service["selector"] == documents["Deployment", "shopstream-api"]["spec"]["selector"]["matchLabels"]
    config = documents["ConfigMap", "shopstream"]["data"]
    secret = documents["Secret", "shopstream"]["stringData"]
    assert "SHOPSTREAM_ADMIN_TOKEN" in secret
    for name in (*config, *secret):
        assert known_variable(name), name
    assert float(config["SHOPSTREAM_READY_TIMEOUT"]) < api["readinessProbe"]["timeoutSeconds"]
