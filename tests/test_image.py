"""`taichu_serve build`, launch.sh, and a real image built, run and called (podman's
Docker-compatible socket in CI, see ../shared/container)."""

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from conftest import REPO, cli, free_port, render

BASE_IMAGE = os.environ.get("TEST_BASE_IMAGE", "localhost/debian-python:bookworm")


def engine():
    try:
        import docker

        client = docker.from_env(timeout=900)
        client.ping()
        client.images.get(BASE_IMAGE)
        return client
    except Exception:
        return None


# What the image test gives as --build-arg PIP_INDEX_URL: PyPI itself, so that the
# build works, then looked for in the image's config and history.
PACKAGE_INDEX = "https://pypi.org/simple"

needs_engine = pytest.mark.skipif(
    engine() is None and os.environ.get("REQUIRE_CONTAINER_TESTS") != "1",
    reason=f"no container engine at DOCKER_HOST with {BASE_IMAGE}",
)


# -- rendering -------------------------------------------------------------------------------


def test_build_files_install_every_dependency_line(tmp_path):
    project = render(tmp_path / "p")
    (project / "dependencies.txt").write_text(
        "# tools\njq\ntree curl  # two on a line\n\nlibgl1\n"
    )
    result = cli("build", str(project), "--no-build", "--from_image", "debian:bookworm")
    assert "wrote Dockerfile" in result.stdout and "docker build -t" in result.stdout
    dockerfile = (project / "Dockerfile").read_text()
    assert 'packages="jq tree curl libgl1"' in dockerfile
    assert (
        "ARG BASE_IMAGE=debian:bookworm" in dockerfile
        and "FROM ${BASE_IMAGE}" in dockerfile
    )
    assert "USER app" in dockerfile and "777" not in dockerfile
    assert "EXPOSE 8080 8081" in dockerfile and "HEALTHCHECK" in dockerfile
    assert (
        "tuna" not in dockerfile and "--index-url" not in dockerfile
    )  # no mirror baked in
    assert "\nmodels\n" in (project / ".dockerignore").read_text()
    assert os.access(project / "launch.sh", os.X_OK)
    cli("build", str(project), "--no-build", "--include-models")
    assert "\nmodels\n" not in (project / ".dockerignore").read_text()


def test_a_hand_edited_dockerfile_is_kept_unless_forced(tmp_path):
    project = render(tmp_path / "p")
    cli("build", str(project), "--no-build")
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\nRUN echo mine\n")
    result = cli("build", str(project), "--no-build")
    assert "kept Dockerfile: edited by hand" in result.stdout
    assert dockerfile.read_text().endswith("RUN echo mine\n")
    forced = cli("build", str(project), "--no-build", "--force")
    assert "RUN echo mine" not in dockerfile.read_text()
    (line,) = [
        line
        for line in forced.stdout.splitlines()
        if line.strip().startswith("Dockerfile ->")
    ]
    backup = project / line.split(" -> ")[1]
    assert backup.read_text().endswith("RUN echo mine\n")
    regenerated = cli("regenerate", str(project))  # build files are not regenerate's
    assert "Dockerfile" not in regenerated.stdout and dockerfile.exists()


def test_no_engine_is_a_clear_error(tmp_path):
    project = render(tmp_path / "p")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "build", str(project)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "no container engine answers" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert (project / "Dockerfile").exists()  # kept for a manual `docker build`


def test_build_without_an_engine_prints_a_command_that_works_as_given(tmp_path):
    project = render(tmp_path / "my project")
    result = cli("build", str(project), "--no-build")
    quoted = "'" + str(project) + "'"
    assert f"build it with: cd {quoted} && docker build -t" in result.stdout


def test_bad_dependency_line_is_a_clear_error(tmp_path):
    project = render(tmp_path / "p")
    (project / "dependencies.txt").write_text("RUN rm -rf /\n")
    result = cli("build", str(project), "--no-build", check=False)
    assert result.returncode == 2 and "not a Debian package name" in result.stderr
    for name, message in (("dependencies.txt", "dependencies.txt is not UTF-8"),
                          ("config.ini", "config.ini: not UTF-8 text")):  # fmt: skip
        (project / "dependencies.txt").write_text("curl\n")
        (project / name).write_bytes(b"\xcc\xff binary")
        result = cli("build", str(project), "--no-build", check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# -- launch.sh, run on this machine with TAICHU_APP_DIR for /app --------------------------------


@pytest.fixture
def launch(tmp_path, project):
    app = tmp_path / "app"
    shutil.copytree(project, app, ignore=shutil.ignore_patterns("*.log"))
    cli("build", str(app), "--no-build")

    def run(env, wait_ready=True):
        http, grpc = free_port(), free_port()
        full = {
            **os.environ,
            "TAICHU_APP_DIR": str(app),
            "PYTHONPATH": str(app),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HTTP_PORT": str(http),
            "grpc_port": str(grpc),  # 2.x's lower-case spelling
            "TAICHU_HOST": "127.0.0.1",
            **env,
        }
        process = subprocess.Popen(
            [str(app / "launch.sh")], env=full, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        if not wait_ready:
            process.wait(timeout=60)
            return process, None
        base = f"http://127.0.0.1:{http}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(base + "/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        started.append(process)
        return process, base

    started = []
    yield run
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def legacy_package(directory: Path) -> Path:
    """A 2.x-style model package: model_service.py in one top-level folder, plus a file."""
    package = directory / "pkg" / "my_model"
    package.mkdir(parents=True)
    shutil.copy(
        REPO / "tests" / "services" / "legacy_2x.py", package / "model_service.py"
    )
    return package


def test_launch_sh_serves_an_archived_2x_package_and_model_archive(tmp_path, launch):
    package = legacy_package(tmp_path)
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(package / "model_service.py", "my_model/model_service.py")
    weights = tmp_path / "weights.tar.gz"
    (tmp_path / "w.bin").write_bytes(b"\x01\x02")
    with tarfile.open(weights, "w:gz") as tar:
        tar.add(tmp_path / "w.bin", "w.bin")
    process, base = launch(
        {"INFER_CODE_PATH": str(archive), "MODEL_PATH": str(weights)}
    )
    reply = httpx.post(
        base + "/v2/models/ModelService/infer", json={"parameters": {"a": 1}}
    )
    assert reply.json()["parameters"]["count"] == 1


def test_launch_sh_serves_a_code_directory(tmp_path, launch):
    package = legacy_package(tmp_path)
    (package / "customize_service.py").write_text(
        "from taichu_serve import Service\nclass Mounted(Service):\n    pass\n"
    )
    process, base = launch(
        {"INFER_CODE_PATH": str(package.parent)}
    )  # one folder: entered
    assert httpx.get(base + "/v2/models/Mounted").status_code == 200


PATHS_SERVICE = """
import os
from taichu_serve import Service
class Paths(Service):
    def _inference(self, data, context):
        import tinydep  # noqa: F401 (only where a package brought it)
        return {"model_path": self.model_path, "files": sorted(os.listdir(self.model_path))}
"""


def paths_seen(base, model="Paths"):
    reply = httpx.post(f"{base}/v2/models/{model}/infer", json={"parameters": {}})
    assert reply.status_code == 200, reply.text
    return reply.json()["parameters"]


def tiny_wheel(directory: Path) -> Path:
    """A wheel of one module, `tinydep`, installable with no index."""
    wheel = directory / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("tinydep.py", "VALUE = 1\n")
        info = "tinydep-1.0.dist-info"
        zipped.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n"
        )
        zipped.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zipped.writestr(f"{info}/RECORD", "")
    return wheel


def test_launch_sh_takes_the_model_path_and_service_file_from_the_settings(
    tmp_path, launch
):
    app = tmp_path / "app"
    (app / "customize_service.py").unlink()
    (app / "my_service.py").write_text(
        PATHS_SERVICE.replace("import tinydep", "pass  #")
    )
    config = app / "config.ini"
    config.write_text(config.read_text().replace(
        "service_file = customize_service.py", "service_file = my_service.py"))  # fmt: skip
    mounted = tmp_path / "mnt" / "models"  # where KServe mounts a storage URI
    mounted.mkdir(parents=True)
    (mounted / "weights.bin").write_bytes(b"\x01")
    _, base = launch({"TAICHU_MODEL_PATH": str(mounted)})
    assert paths_seen(base) == {"model_path": str(mounted), "files": ["weights.bin"]}

    # MODEL_PATH's files go where the settings say the model is.
    archive = tmp_path / "weights.tar.gz"
    (tmp_path / "w2.bin").write_bytes(b"\x02")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "w2.bin", "w2.bin")
    other = tmp_path / "other"
    env = {"TAICHU_MODEL_PATH": str(other), "MODEL_PATH": str(archive),
           "TAICHU_SERVICE_FILE": str(app / "my_service.py")}  # fmt: skip
    config.write_text(config.read_text().replace("my_service.py", "missing.py"))
    _, base = launch(env)
    assert paths_seen(base) == {"model_path": str(other), "files": ["w2.bin"]}


def test_launch_sh_installs_the_requirements_of_a_code_package(tmp_path, launch):
    package = tmp_path / "pkg" / "code"
    package.mkdir(parents=True)
    (package / "customize_service.py").write_text(PATHS_SERVICE)
    (package / "models").mkdir()
    wheel = tiny_wheel(package)
    (package / "requirements.txt").write_text(f"./{wheel.name}\n")
    _, base = launch({"INFER_CODE_PATH": str(package.parent)})
    assert paths_seen(base)["model_path"].endswith("/code/models")


@pytest.mark.parametrize(
    "env,message",
    [
        ({"INFER_CODE_PATH": "/nonexistent/code.zip"}, "no such file or directory"),
        ({"MODEL_PATH": "/nonexistent/weights"}, "no such file or directory"),
        (
            {"INFER_CODE_PATH": "/etc/hostname"},
            "expected a directory, .zip, .tar or .tar.gz",
        ),
    ],
)
def test_launch_sh_bad_paths_fail_clearly(launch, env, message):
    process, _ = launch(env, wait_ready=False)
    assert process.returncode == 1
    assert message in process.stdout.read()


# -- a real image ---------------------------------------------------------------------------------


@needs_engine
def test_build_run_and_call_a_real_image(tmp_path):
    import numpy as np
    import tritonclient.grpc as triton_grpc

    project = render(tmp_path / "imageproject")
    (project / "dependencies.txt").write_text("jq\n# a comment\ntree\n")
    tag = f"it{os.getpid()}"
    env = {**os.environ}
    # A package index given at build time (credentials and all) stays out of the image.
    index = ["--build-arg", f"PIP_INDEX_URL={PACKAGE_INDEX}"]
    result = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "build", str(project), "--from_image", BASE_IMAGE,
         "--name", "taichu-test", "--tag", tag, "--network", "host", *index],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"built taichu-test:{tag}" in result.stdout

    # A change to the code alone rebuilds neither apt nor pip layers.
    service = project / "customize_service.py"
    service.write_text(service.read_text() + "\n# changed\n")
    rebuilt = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "build", str(project), "--from_image", BASE_IMAGE,
         "--name", "taichu-test", "--tag", tag, "--network", "host", *index],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    cached = cached_steps(rebuilt.stdout)
    assert any("apt-get install" in step for step in cached)
    assert any(
        "pip install -r taichu_runtime/requirements.txt" in step for step in cached
    )
    assert any("pip install -r requirements.txt" in step for step in cached)
    assert not any(step.startswith("COPY --chown=app:app . .") for step in cached)
    client = engine()
    image = f"taichu-test:{tag}"
    built = client.images.get(image)
    history = json.dumps(built.history())
    assert "pypi.org/simple" not in json.dumps(built.attrs["Config"]) + history
    http, grpc_port = free_port(), free_port()
    container = client.containers.run(
        image, detach=True, network_mode="host",
        environment={"HTTP_PORT": str(http), "GRPC_PORT": str(grpc_port), "TAICHU_HOST": "127.0.0.1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{http}/v2/health/ready").status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            container.reload()
            assert container.status == "running", container.logs().decode()
            assert time.monotonic() < deadline, container.logs().decode()
            time.sleep(0.2)
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]}
            ]
        }
        reply = httpx.post(
            f"http://127.0.0.1:{http}/v2/models/ModelService/infer", json=body
        )
        assert reply.json()["outputs"][0]["data"] == [1.5, 2.5]
        triton = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        item = triton_grpc.InferInput("x", [2], "INT64")
        item.set_data_from_numpy(np.int64([3, 4]))
        assert triton.infer("ModelService", [item]).as_numpy("x").tolist() == [3, 4]

        code, output = container.exec_run(
            ["sh", "-c", "id -u; command -v jq; command -v tree; ls /app"]
        )
        lines = output.decode().split()
        assert lines[0] == "10001"  # not root
        assert "/usr/bin/jq" in lines and "/usr/bin/tree" in lines  # every apt line
        assert "models" in lines
        code, output = container.exec_run(
            ["python3", "-c", "import taichu_serve, sys; print(taichu_serve.__file__)"]
        )
        assert code != 0 and b"No module named 'taichu_serve'" in output
        code, output = container.exec_run(["sh", "-c", "ls /app/models"])
        assert output.decode().split() == []  # models/ is not in the image
        code, output = container.exec_run(["python3", "-c", STALE_BYTECODE])
        assert code == 0, output.decode()
        assert output.decode().split() == []  # no start compiles the code again
        container.stop(timeout=30)
        status = container.wait(timeout=60)["StatusCode"]
        assert status == 0  # SIGTERM reached the server, which drained and exited
        check_run_docker(project, image, client)
    finally:
        container.remove(force=True)
        client.images.remove(image, force=True)


# Prints each .py file under /app that has no bytecode Python would use: the image runs
# with PYTHONDONTWRITEBYTECODE, so such a file is compiled anew at every start.
STALE_BYTECODE = """
import importlib.util, pathlib
for source in pathlib.Path("/app").rglob("*.py"):
    cached = pathlib.Path(importlib.util.cache_from_source(str(source)))
    header = cached.read_bytes()[:16] if cached.exists() else b""
    flags = int.from_bytes(header[4:8], "little")
    stat, data = source.stat(), source.read_bytes()
    if header[:4] != importlib.util.MAGIC_NUMBER:
        fresh = False
    elif flags & 1:  # hash-based
        fresh = header[8:16] == importlib.util.source_hash(data)
    else:
        fresh = header[8:16] == (
            int(stat.st_mtime).to_bytes(4, "little")
            + stat.st_size.to_bytes(4, "little")
        )
    if not fresh:
        print(source)
"""


def cached_steps(build_output: str) -> list:
    """The Dockerfile steps a build took from its cache (podman's and Docker's wording)."""
    lines = build_output.splitlines()
    steps = []
    for index, line in enumerate(lines[:-1]):
        if "STEP " in line or line.startswith("Step "):
            if "Using cache" in lines[index + 1]:
                steps.append(line.split(": ", 1)[-1].strip())
    return steps


def check_run_docker(project, image, client):
    """`taichu_serve run --docker`: up, ready, endpoints printed, stopped on Ctrl-C."""
    import signal

    http, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "taichu_serve", "run", str(project), "--docker", "--image", image,
         "--network", "host", "--http-port", str(http), "--grpc-port", str(grpc_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{http}/v2/health/ready").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=90)[0]
    assert process.returncode == 0, output
    assert f"HTTP  http://127.0.0.1:{http}/v2/models" in output and "stopping" in output
    assert not [c for c in client.containers.list(all=True) if image in c.image.tags]

    # An image that was never built: what to do, not the engine's 404.
    missing = cli("run", str(project), "--docker", "--image",
                  "localhost/never-built:1", check=False)  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: there is no image localhost/never-built:1: run `taichu_serve build` "
        "first (or name one with --image)"
    )


# -- Kubernetes and KServe ------------------------------------------------------------------------


def test_no_scrape_annotations_where_metrics_need_the_token(tmp_path):
    import yaml

    project = render(tmp_path / "p")
    config = project / "config.ini"
    config.write_text(
        config.read_text().replace("require_token = false", "require_token = true")
    )
    cli("manifests", str(project))
    deployment = next(
        yaml.safe_load_all((project / "deploy" / "kubernetes.yaml").read_text())
    )
    assert "annotations" not in deployment["spec"]["template"]["metadata"]


def test_manifests_validate_against_the_kubernetes_schemas(tmp_path):
    import kubernetes_validate
    import yaml

    project = render(tmp_path / "p")
    config = project / "config.ini"
    config.write_text(
        config.read_text()
        .replace("gpu = 0", "gpu = 1")
        .replace("memory = 2Gi", "memory = 6Gi")
        .replace("shutdown_timeout = 30", "shutdown_timeout = 50")
    )
    result = cli(
        "build",
        str(project),
        "--no-build",
        "--name",
        "registry.example.com/team/bert_base",
    )
    assert "wrote deploy/kubernetes.yaml" in result.stdout
    documents = list(
        yaml.safe_load_all((project / "deploy" / "kubernetes.yaml").read_text())
    )
    assert [d["kind"] for d in documents] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ]
    for document in documents:
        kubernetes_validate.validate(document, "1.30.0", strict=True)
    deployment, service, autoscaler = documents
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert (
        container["image"] == f"registry.example.com/team/bert_base:{taichu_version()}"
    )
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["limits"] == {"memory": "6Gi", "nvidia.com/gpu": 1}
    assert pod["terminationGracePeriodSeconds"] >= 50 + 5  # drain + preStop
    assert {p["port"] for p in service["spec"]["ports"]} == {8080, 8081}
    assert (
        autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    )
    assert deployment["metadata"]["name"] == "bert-base"
    # /metrics is public by default: the pods invite annotation scrapers.
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"

    kserve = yaml.safe_load((project / "deploy" / "kserve.yaml").read_text())
    assert kserve["apiVersion"] == "serving.kserve.io/v1beta1"
    assert (
        kserve["kind"] == "InferenceService"
        and kserve["metadata"]["name"] == "bert-base"
    )
    (predictor,) = kserve["spec"]["predictor"]["containers"]
    assert (
        predictor["name"] == "kserve-container"
    )  # what KServe requires of a custom predictor
    assert predictor["image"] == container["image"]
    assert predictor["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    # The predictor container is a core/v1 Container: validate it as one, in a Pod.
    pod_document = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                    "spec": {"containers": [predictor]}}  # fmt: skip
    kubernetes_validate.validate(pod_document, "1.30.0", strict=True)


def taichu_version():
    import taichu_serve

    return taichu_serve.__version__


@needs_engine
def test_image_from_a_plain_debian_with_python3_only(tmp_path):
    """No venv, no pip in the base: the Dockerfile adds python3-venv itself."""
    client = engine()
    plain = f"localhost/taichu-test-plain:{os.getpid()}"
    recipe = (
        f"FROM {BASE_IMAGE}\n"
        "RUN apt-get purge -y python3-venv python3-pip python3.11-venv || true\n"
    )
    client.images.build(
        fileobj=io.BytesIO(recipe.encode()),
        tag=plain,
        rm=True,
        pull=False,
        network_mode="host",
    )
    project = render(tmp_path / "plainproject")
    image = f"taichu-test-plain-app:{os.getpid()}"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "taichu_serve", "build", str(project), "--from_image", plain,
             "--name", image.split(":")[0], "--tag", image.split(":")[1], "--network", "host"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert "python3-venv" in result.stdout  # added because the base lacked it
        http = free_port()
        container = client.containers.run(
            image, detach=True, network_mode="host",
            environment={"HTTP_PORT": str(http), "GRPC_PORT": str(free_port())},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    url = f"http://127.0.0.1:{http}/v2/models/ModelService/infer"
                    body = {
                        "inputs": [
                            {
                                "name": "x",
                                "datatype": "INT32",
                                "shape": [1],
                                "data": [8],
                            }
                        ]
                    }
                    reply = httpx.post(url, json=body)
                    if reply.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, container.logs().decode()
                time.sleep(0.3)
            assert reply.json()["outputs"][0]["data"] == [8]
        finally:
            container.remove(force=True)
    finally:
        for name in (image, plain):
            if any(name in image_.tags for image_ in client.images.list()):
                client.images.remove(name, force=True)


@pytest.mark.parametrize("command", [("build", "--no-build"), ("manifests",)])
def test_bad_resources_stop_before_anything_is_written(tmp_path, command):
    project = render(tmp_path / "p")
    config = project / "config.ini"
    config.write_text(config.read_text().replace("memory = 2Gi", "memory = 4000"))
    before = sorted(p.name for p in project.iterdir())
    result = cli(command[0], str(project), *command[1:], check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "[resources] memory: '4000' is not an amount with a unit" in line
    assert sorted(p.name for p in project.iterdir()) == before
