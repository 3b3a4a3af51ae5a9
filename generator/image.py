"""`taichu_serve build`: render Dockerfile, .dockerignore and launch.sh from
templates/docker into the project, then build the image through the docker SDK.

These three files are framework-owned, refreshed on every build; one edited by hand
(its hash differs from the one in the manifest) is kept unless `force`.
"""

import re
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import jinja2

from . import __version__
from .errors import UserError
from .manifest import read_manifest, sha256
from .project import read_config
from .render import template_root

BUILD_FILES = {"Dockerfile": "Dockerfile.jinja", ".dockerignore": "dockerignore.jinja",
               "launch.sh": "launch.sh.jinja"}  # fmt: skip


def apt_packages(project: Path) -> List[str]:
    """Every package of dependencies.txt: one or more per line, `#` starts a comment."""
    path = project / "dependencies.txt"
    if not path.is_file():
        return []
    packages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        for name in line.split("#", 1)[0].split():
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.:=~-]*", name):
                raise UserError(
                    f"dependencies.txt: {name!r} is not a Debian package name"
                )
            packages.append(name)
    return packages


def ports(project: Path) -> Dict[str, int]:
    parser = read_config(project / "config.ini")
    return {
        "http_port": parser.getint("server", "http_port", fallback=8080),
        "grpc_port": parser.getint("server", "grpc_port", fallback=8081),
    }


def default_image_name(project: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", project.resolve().name.lower()).strip("-._")
    return f"taichu-{name or 'model'}"


def template_environment(folder: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_root() / "templates" / folder)),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def write_build_files(
    project: Path, contents: Dict[str, str], force: bool, echo
) -> List[Path]:
    """Write files `build` owns (Dockerfile, deploy/...), recording their hashes; a file
    edited by hand since is kept unless `force` (then the edited copy stays as .orig).
    """
    manifest = read_manifest(project)
    recorded = manifest.build_files if manifest else {}
    written = []
    for name, content in contents.items():
        target = project / name
        if target.exists() and target.read_text() != content:
            edited = recorded.get(name) != sha256(target)
            if edited and not force:
                echo(
                    f"kept {name}: edited by hand (use --force to replace it; a copy is kept)"
                )
                continue
            if edited:
                shutil.copy2(target, target.with_name(target.name + ".orig"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        written.append(target)
    if manifest:
        manifest.build_files.update(
            {p.relative_to(project).as_posix(): sha256(p) for p in written}
        )
        manifest.write(project)
    return written


def render_build_files(
    project: Path, base_image: str, image: str, include_models: bool, force: bool, echo
) -> List[Path]:
    environment = template_environment("docker")
    data = {
        "generator_version": __version__,
        "base_image": base_image,
        "image": image,
        "apt_packages": apt_packages(project),
        "include_models": include_models,
        **ports(project),
    }
    contents = {
        name: environment.get_template(template).render(data)
        for name, template in BUILD_FILES.items()
    }
    written = write_build_files(project, contents, force, echo)
    launch = project / "launch.sh"
    if launch.exists():
        launch.chmod(0o755)
    return written


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

    client = docker_client(timeout=120)
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
