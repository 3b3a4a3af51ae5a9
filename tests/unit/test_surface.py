"""surface.py is the one list of endpoints: the app, the token check and the README
follow it."""

import re
from pathlib import Path

from taichu_runtime.surface import (
    GRPC_METHODS,
    HTTP_ROUTES,
    INFER_ROUTE,
    PUBLIC_GRPC_METHODS,
    path_regex,
    public_http_paths,
)

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_infer_regex_matches_both_paths_and_nothing_else():
    pattern = path_regex(INFER_ROUTE)
    assert pattern.fullmatch("/v2/models/m/infer").groups() == ("m", None)
    assert pattern.fullmatch("/v2/models/m/versions/2/infer").groups() == ("m", "2")
    for path in ("/v2/models/m/infer/x", "/v2/models//infer", "/v2/models/m/ready"):
        assert pattern.fullmatch(path) is None


def test_only_health_metrics_and_the_api_description_are_public():
    health = {"/v2/health/live", "/v2/health/ready", "/health/live", "/health/ready"}
    docs = {
        "/openapi.json",
        "/docs",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/favicon.png",
    }
    assert public_http_paths(metrics_need_token=False) == health | docs | {"/metrics"}
    assert public_http_paths(metrics_need_token=True) == health | docs
    assert {m.rsplit("/", 1)[1] for m in PUBLIC_GRPC_METHODS} == {
        "ServerLive",
        "ServerReady",
        "Check",
        "Watch",
    }


def test_the_readme_lists_every_route_and_method():
    endpoints = README[README.index("## Endpoints") : README.index("## Streaming")]
    for route in HTTP_ROUTES:
        shown = (
            route.path.replace("{name}", "{name}[/versions/{v}]")
            if route.per_model
            else route.path
        )
        assert f"{route.method} {shown}" in endpoints, route
    for service, methods in GRPC_METHODS.items():
        assert service in endpoints or service.split(".")[0] in endpoints, service
        for method in methods:
            assert re.search(rf"\b{method.name}\b", endpoints), method
