"""The tests every project gets in tests/ (issue 23, point 4): they pass on the template,
fail on a broken service, follow the service's declared inputs and streams, and stay the
user's files."""

import subprocess
import sys

from conftest import cli

RAISING = """from taichu_serve import Service


class Broken(Service):
    def _inference(self, data, context):
        raise RuntimeError("the weights are missing")
"""

WRONG_OUTPUT = """from taichu_serve import Service


class WrongType(Service):
    def _inference(self, data, context):
        return {"y": object()}
"""

STREAMING_DECLARED = """import numpy as np

from taichu_serve import Service


class Tokens(Service):
    inputs = [{"name": "count", "datatype": "INT32", "shape": [1]}]
    outputs = [{"name": "token", "datatype": "INT64", "shape": [1]}]

    def _inference(self, data, context):
        assert data["count"].dtype == np.int32  # built from the declared input
        return data

    def _postprocess(self, data, context):
        for index in range(3):
            yield {"token": np.array([index])}
"""


def project_pytest(project) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def outcomes(result) -> dict:
    """{test name: PASSED / FAILED / SKIPPED / ERROR} from pytest -v's lines."""
    found = {}
    for line in result.stdout.splitlines():
        test, _, rest = line.partition(" ")
        word = rest.split(" ")[0]
        if "::" in test and word in ("PASSED", "FAILED", "SKIPPED", "ERROR"):
            found[test.split("::", 1)[1]] = word
    return found


def test_the_template_passes_its_own_tests(project):
    assert sorted(p.name for p in (project / "tests").iterdir()) == [
        "conftest.py",
        "test_conformance.py",
        "test_service.py",
    ]
    result = project_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = outcomes(result)
    assert seen["test_infer_binary_tensors[grpc]"] == "PASSED"
    assert seen["test_bad_input_is_400_and_invalid_argument"] == "PASSED"
    assert seen["test_the_sample_request_gets_a_v2_response"] == "PASSED"
    assert seen["test_a_stream_comes_whole_over_grpc"] == "SKIPPED"


def test_they_fail_on_a_broken_service(make_project):
    for service in (RAISING, WRONG_OUTPUT):
        project = make_project()
        (project / "customize_service.py").write_text(service)
        result = project_pytest(project)
        assert result.returncode == 1, result.stdout
        seen = outcomes(result)
        assert seen["test_the_sample_request_gets_a_v2_response"] == "FAILED"
        assert seen["test_infer_http_json"] == "FAILED"
        assert seen["test_infer_binary_tensors[grpc]"] == "FAILED"
        assert seen["test_health"] == "PASSED"  # the failures name what is wrong


def test_they_follow_declared_inputs_and_check_a_stream(make_project):
    project = make_project()
    (project / "customize_service.py").write_text(STREAMING_DECLARED)
    result = project_pytest(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes(result)["test_a_stream_comes_whole_over_grpc"] == "PASSED"

    # A stream that ends early over gRPC fails it: the check is real.
    broken = STREAMING_DECLARED.replace(
        "range(3)", "range(3 if context['protocol'] == 'local' else 2)"
    )
    (project / "customize_service.py").write_text(broken)
    result = project_pytest(project)
    assert outcomes(result)["test_a_stream_comes_whole_over_grpc"] == "FAILED"


def test_tests_are_the_users_files(make_project, tmp_path):
    project = make_project()
    edited = project / "tests" / "test_service.py"
    edited.write_text("def test_mine():\n    pass\n")
    (project / "tests" / "conftest.py").unlink()
    result = cli("regenerate", str(project), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert edited.read_text() == "def test_mine():\n    pass\n"
    assert not (project / "tests" / "conftest.py").exists()  # not put back in tests/

    # A project without tests/ (made by an earlier version) gets them on regenerate.
    older = make_project()
    for path in (older / "tests").iterdir():
        path.unlink()
    (older / "tests").rmdir()
    cli("regenerate", str(older))
    assert (older / "tests" / "test_conformance.py").is_file()
