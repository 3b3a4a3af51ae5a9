"""`taichu_serve build`: render Dockerfile, .dockerignore and launch.sh from
templates/docker into the project, then build the image through the docker SDK.

Those files are written like every other framework file (sync.py): refreshed while
they are as taichu-serve wrote them; a hand edit is kept unless `force`.
"""

import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import jinja2

from .config import server_settings
from .errors import UserError
from .manifest import read_manifest
from .ownership import BUILD_FILES, known_files
from .render import template_root
from .sync import EDITED, apply, diff, plan, reason, record, report


def apt_packages(project: Path) -> List[str]:
    """Every package of dependencies.txt: one or more per line, `#` starts a comment."""
    path = project / "dependencies.txt"
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError("dependencies.txt is not UTF-8 text") from None
    packages = []
    for line in text.splitlines():
        for name in line.split("#", 1)[0].split():
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.:=~-]*", name):
                raise UserError(
                    f"dependencies.txt: {name!r} is not a Debian package name"
                )
            packages.append(name)
    return packages


def ports(project: Path) -> Dict[str, int]:
    settings = server_settings(project)
    return {"http_port": settings.http_port, "grpc_port": settings.grpc_port}


def default_image_name(project: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", project.resolve().name.lower()).strip("-._")
    return f"taichu-{name or 'model'}"


def template_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root() / "templates")),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def write_owned_files(
    project: Path,
    templates: Dict[str, str],
    data: Dict,
    force: bool,
    echo: Callable[[str], None],
) -> List[Path]:
    """Render `templates` (path in the project -> template) with `data` and sync them
    into the project by the ownership rules; returns the files written."""
    environment = template_environment()
    rendered = {
        path: environment.get_template(template).render(data).encode()
        for path, template in templates.items()
    }
    manifest = read_manifest(project)
    changes = plan(project, rendered, manifest, set(templates), [])
    for change in changes:
        if change.is_conflict and not (force and change.action == EDITED):
            echo(f"kept {change.path}: {reason(change)}; --force replaces a hand edit")
            echo(diff(project, rendered, change).rstrip())
    made = apply(project, rendered, changes, force)
    record(project, rendered, manifest, known_files(template_root()), [])
    report([c for c in made if c.backup], echo)
    return [project / c.path for c in made]


def render_build_files(
    project: Path, base_image: str, image: str, include_models: bool, force: bool, echo
) -> List[Path]:
    data = {
        "base_image": base_image,
        "image": image,
        "apt_packages": apt_packages(project),
        "include_models": include_models,
        **ports(project),
    }
    return write_owned_files(project, BUILD_FILES, data, force, echo)


def docker_client(timeout: int = 900):
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as error:  # the SDK raises several types for "no engine"
        raise UserError(
            f"no container engine answers ({error}); start Docker (or podman's socket) "
            "and set DOCKER_HOST, or use --no-build and run `docker build` yourself"
        ) from None
    return client


def build_image(
    project: Path, tag: str, build_args: Dict[str, str], network: Optional[str], echo
) -> str:
    """Build through the docker SDK, streaming the engine's output; return the image id."""
    client = docker_client()
    events: Iterable[dict] = client.api.build(
        path=str(project),
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
        decode=True,
        buildargs=build_args or None,
        network_mode=network,
    )
    image_id = None
    for event in events:
        if "stream" in event:
            text = event["stream"].rstrip("\n")
            if text:
                echo(text)
        if "aux" in event and "ID" in event["aux"]:
            image_id = event["aux"]["ID"]
        if "error" in event:
            raise UserError(f"the image build failed: {event['error'].strip()}")
    if image_id is None:
        try:
            image_id = client.images.get(tag).id
        except Exception:
            raise UserError("the image build ended without an image") from None
    return image_id


def run_container(
    image: str, http_port: int, grpc_port: int, network: Optional[str], echo
):
    """Start the image, wait until it is ready, show its log; stop and remove it on Ctrl-C."""
    import time
    import urllib.request

    import docker

    client = docker_client(timeout=120)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise UserError(
            f"there is no image {image}: run `taichu_serve build` first "
            "(or name one with --image)"
        ) from None
    environment = {"HTTP_PORT": str(http_port), "GRPC_PORT": str(grpc_port)}
    options = {"network_mode": "host"} if network == "host" else {
        "ports": {f"{http_port}/tcp": http_port, f"{grpc_port}/tcp": grpc_port}
    }  # fmt: skip
    try:
        container = client.containers.run(
            image, detach=True, environment=environment, **options
        )
    except Exception as error:
        raise UserError(f"cannot start {image}: {error}") from None
    try:
        ready_url = f"http://127.0.0.1:{http_port}/v2/health/ready"
        deadline = time.monotonic() + 300
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs().decode(errors="replace")
                raise UserError(f"the container stopped before it was ready:\n{logs}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise UserError(f"{image} was not ready after 300 s")
            time.sleep(0.2)
        echo(f"{image} is ready (container {container.short_id}):")
        echo(f"  HTTP  http://127.0.0.1:{http_port}/v2/models")
        echo(f"  gRPC  127.0.0.1:{grpc_port}")
        echo("Ctrl-C stops it.")
        for line in container.logs(stream=True, follow=True, since=int(time.time())):
            echo(line.decode(errors="replace").rstrip("\n"))
    except KeyboardInterrupt:
        pass
    finally:
        echo(f"stopping {container.short_id}")
        try:
            container.stop(timeout=35)
        finally:
            container.remove(force=True)
