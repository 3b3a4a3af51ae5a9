"""/openapi.json and the /docs page (issue 23, point 5): a valid document naming the
model's declared tensors, and a page that works in a real browser with no internet."""

import os
import shutil
import subprocess

import httpx
import pytest
from openapi_spec_validator import validate

from conftest import REPO

DECLARED = """from taichu_serve import Service


class Scorer(Service):
    inputs = [{"name": "pixels", "datatype": "FP32", "shape": [-1, 4]}]
    outputs = [{"name": "score", "datatype": "FP64", "shape": [-1]}]

    def _inference(self, data, context):
        return {"score": data["pixels"].sum(axis=1).astype("float64")}
"""
# The screenshot in the README: refreshed by this test with DOCS_SCREENSHOT=1.
SCREENSHOT = REPO / "docs" / "images" / "docs-page.png"


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    from conftest import Server, render

    project = render(tmp_path_factory.mktemp("docs") / "project")
    (project / "customize_service.py").write_text(DECLARED)
    running = Server(project, ["--token", "s3cret"]).wait_ready()
    yield running
    running.stop()


def test_openapi_names_the_declared_tensors_and_its_example_works(scorer):
    document = httpx.get(scorer.http + "/openapi.json").json()  # public
    validate(document)
    schemas = document["components"]["schemas"]
    inputs = schemas["InferRequest"]["properties"]["inputs"]["items"]["oneOf"]
    assert [i["properties"]["name"]["const"] for i in inputs] == ["pixels"]
    assert inputs[0]["properties"]["datatype"]["const"] == "FP32"
    outputs = schemas["InferResponse"]["properties"]["outputs"]["items"]["oneOf"]
    assert [o["properties"]["name"]["const"] for o in outputs] == ["score"]
    assert "pixels" in schemas["GenerateRequest"]["properties"]
    for route in ("infer", "generate", "generate_stream"):
        operation = document["paths"][f"/v2/models/{{name}}/{route}"]["post"]
        assert operation["requestBody"]["required"] is True
        assert operation["parameters"][0]["example"] == "Scorer"
        assert operation["security"] == [{"bearer": []}]

    example = schemas["InferRequest"]["example"]
    reply = httpx.post(
        scorer.http + "/v2/models/Scorer/infer",
        json=example,
        headers={"Authorization": "Bearer s3cret"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [4.0]


def test_the_page_and_its_files_are_served_from_the_server(scorer):
    page = httpx.get(scorer.http + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http" not in page.text.replace("/openapi.json", "").split("<body>")[1]
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        asset = httpx.get(f"{scorer.http}/docs/{name}")
        assert asset.status_code == 200 and len(asset.content) > 1000, name


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail("chromium is not installed (REQUIRE_BROWSER_TESTS is set)")
        pytest.skip("no chromium: apt-get install chromium (.ci/run does)")
    return found


def headless(url: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium with no way out but loopback: a CDN would fail to load."""
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=15000", "--window-size=1280,1400", *args, url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_page_lists_the_routes_in_a_real_browser(scorer, tmp_path):
    rendered = headless(scorer.http + "/docs", "--dump-dom")
    dom = rendered.stdout
    assert 'class="swagger-ui' in dom, rendered.stderr[-2000:]
    assert "/v2/models/{name}/infer" in dom  # the operations, drawn by Swagger UI
    assert "/v2/models/{name}/generate_stream" in dom
    assert "Serving model" in dom and "Scorer" in dom

    picture = SCREENSHOT if os.environ.get("DOCS_SCREENSHOT") else tmp_path / "docs.png"
    shot = headless(scorer.http + "/docs", f"--screenshot={picture}")
    assert shot.returncode == 0 and picture.stat().st_size > 10_000
