"""The taichu_serve command: init, run, --version, and its messages for user mistakes."""

import signal
import subprocess
import sys
import time

import httpx

from conftest import cli, free_port, render
from taichu_serve import __version__


def test_version():
    assert cli("--version").stdout.strip() == f"taichu-serve {__version__}"


def test_init_default_directory_is_project(tmp_path):
    result = cli("init", cwd=tmp_path)
    assert (tmp_path / "project" / "customize_service.py").is_file()
    assert "taichu_serve run" in result.stdout


def test_init_options_reach_config_ini(tmp_path):
    project = render(
        tmp_path / "p", "--name", "bert", "--http-port", "9000", "--grpc_port", "9001"
    )
    config = (project / "config.ini").read_text()
    assert "http_port = 9000" in config and "grpc_port = 9001" in config
    assert "name = bert" in config


def test_init_refuses_a_non_empty_directory_and_force_keeps_user_files(tmp_path):
    project = render(tmp_path / "p")
    mine = (
        "# my model\nfrom taichu_serve import Service\nclass Mine(Service):\n    pass\n"
    )
    (project / "customize_service.py").write_text(mine)
    (project / "config.ini").write_text("[server]\nhttp_port = 1234\n")
    (project / "taichu_runtime" / "pipeline" / "host.py").write_text("broken")

    refused = cli("init", str(project), check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and "not empty" in refused.stderr
    assert "Traceback" not in refused.stderr

    forced = cli("init", str(project), "--force")
    assert (project / "customize_service.py").read_text() == mine
    assert (project / "config.ini").read_text() == "[server]\nhttp_port = 1234\n"
    assert (
        "class ModelHost"
        in (project / "taichu_runtime" / "pipeline" / "host.py").read_text()
    )
    # It says what it replaced, and where the replaced edit is.
    (line,) = [
        line
        for line in forced.stdout.splitlines()
        if "taichu_runtime/pipeline/host.py ->" in line
    ]
    assert (project / line.split(" -> ")[1]).read_text() == "broken"


def test_user_mistakes_get_one_line_and_exit_code_2(tmp_path):
    (tmp_path / "afile").write_text("not a directory")
    project = render(tmp_path / "p")
    cases = [
        (["init", str(tmp_path / "a"), "--name", "bad name!"], "--name"),
        (
            ["init", str(tmp_path / "b"), "--http-port", "8080", "--grpc-port", "8080"],
            "both 8080",
        ),
        (["run", str(tmp_path)], "not a taichu-serve project"),
        (["init", str(tmp_path / "c"), "--http-port", "99999"], "65535"),
        (["frobnicate"], "No such command"),
        (["init", "/proc/taichu-project"], "cannot create /proc/taichu-project"),
        (["init", str(tmp_path / "afile" / "sub")], "Not a directory"),
        (["build", str(project), "--name", "Bad Name"], "--name 'Bad Name' is not"),
        (["build", str(project), "--tag", "bad tag"], "--tag 'bad tag' is not"),
        (["manifests", str(project), "--image", "Bad Image"], "--image 'Bad Image'"),
        (["run", str(project), "--docker", "--image", "a b"], "--image 'a b'"),
    ]
    for args, message in cases:
        result = cli(*args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        if message not in ("No such command", "65535"):  # click's add a usage line
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # A refused name wrote nothing: no build files, no manifests.
    assert not (project / "Dockerfile").exists()
    assert not (project / "deploy").exists()


def test_run_on_a_2x_project_says_what_to_do(tmp_path):
    (tmp_path / "model_service.py").write_text("from taichu_serve import ModelServer\n")
    result = cli("run", str(tmp_path), check=False)
    assert result.returncode == 2 and "2.x project" in result.stderr


def run_server(project, *args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "taichu_serve", "run", str(project), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def wait_ready(port, process, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/v2/health/ready", timeout=1
                ).status_code
                == 200
            ):
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("not ready")


def stop(process):
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    return process.stdout.read()


def test_run_precedence_flag_over_env_over_config(tmp_path):
    import os

    project = render(tmp_path / "p")
    config_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = (
        (project / "config.ini")
        .read_text()
        .replace("http_port = 8080", f"http_port = {config_port}")
    )
    config = config.replace("grpc_port = 8081", f"grpc_port = {free_port()}")
    (project / "config.ini").write_text(config)

    process = run_server(project)
    wait_ready(config_port, process)
    stop(process)

    env = {**os.environ, "TAICHU_HTTP_PORT": str(env_port)}
    process = run_server(project, env=env)
    wait_ready(env_port, process)
    stop(process)

    process = run_server(project, "--http_port", str(flag_port), env=env)
    wait_ready(flag_port, process)
    output = stop(process)
    assert process.returncode == 0, output


def test_run_warns_on_a_project_from_another_version(tmp_path):
    project = render(tmp_path / "p")
    version = project / "taichu_runtime" / "_version.py"
    version.write_text(version.read_text().replace(f'"{__version__}"', '"2.9.0"'))
    (project / "config.ini").write_text(
        f"[server]\nhttp_port = {free_port()}\ngrpc_port = {free_port()}\n"
    )
    process = run_server(project)
    time.sleep(1)
    output = stop(process)
    assert (
        "generated by taichu-serve 2.9.0" in output
        and "taichu_serve regenerate" in output
    )


def test_bad_config_value_is_one_line(tmp_path):
    project = render(tmp_path / "p")
    (project / "config.ini").write_text("[server]\nhttp_port = eighty\n")
    result = subprocess.run(
        [sys.executable, "-m", "taichu_runtime"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "taichu_runtime: error: config.ini [server] http_port: 'eighty' is not a valid int"
    )


def test_run_takes_every_flag_the_runtime_declares(tmp_path):
    from taichu_serve.config import runtime_settings

    help_text = cli("run", "--help").stdout
    for option in runtime_settings().OPTIONS:
        assert option.flags[0] in help_text, option.flags[0]

    project = render(tmp_path / "p")
    http_port, grpc_port = free_port(), free_port()
    process = run_server(
        project,
        "--http-port", str(http_port), "--grpc_port", str(grpc_port),
        "--model-name", "Renamed", "--shutdown-timeout", "7", "--max-batch-size", "4",
    )  # fmt: skip
    wait_ready(http_port, process)
    ready = httpx.get(f"http://127.0.0.1:{http_port}/v2/models/Renamed/ready")
    output = stop(process)
    assert ready.status_code == 200, output
    assert "waiting up to 7 s" in output

    bad = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "run", str(project), "--workers", "many"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "'many' is not a valid int" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_help_at_80_columns_shows_every_option_whole(tmp_path):
    import os

    env = {**os.environ, "COLUMNS": "80"}
    for command in ("init", "run", "regenerate", "build", "manifests"):
        text = subprocess.run(
            [sys.executable, "-m", "taichu_serve", command, "--help"],
            capture_output=True, text=True, env=env, check=True,
        ).stdout  # fmt: skip
        assert "…" not in text and "<bool>" not in text, text
        assert max(len(line) for line in text.splitlines()) <= 80, text
    run_help = subprocess.run(
        [sys.executable, "-m", "taichu_serve", "run", "--help"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    for flag in ("--max-concurrent-requests", "--metrics-require-token", "--docker"):
        assert flag in run_help
