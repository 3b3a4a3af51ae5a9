"""The `taichu_serve` command: argument parsing and messages only; the work is elsewhere."""

import inspect
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Callable, List, Optional

import typer

from . import __version__
from .config import flag_arguments, runtime_settings, server_settings
from .errors import UserError
from .manifest import read_manifest
from .project import generated_version, is_project, looks_like_2x
from .regenerate import regenerate as regenerate_project
from .regenerate import sync_app

app = typer.Typer(
    name="taichu_serve",
    help="Turn one file of model code (customize_service.py) into a model-serving app.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # click's plain help: at 80 columns rich's tables cut option names short.
    rich_markup_mode=None,
)

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

HttpPort = Annotated[
    Optional[int],
    typer.Option("--http-port", "--http_port", min=1, max=65535, help="HTTP port"),
]
GrpcPort = Annotated[
    Optional[int],
    typer.Option("--grpc-port", "--grpc_port", min=1, max=65535, help="gRPC port"),
]
ConfigPath = Annotated[
    Optional[str],
    typer.Option("--config", help="Path of config.ini (default: the project's)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"taichu-serve {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """taichu-serve: one file of model code in, a KServe v2 HTTP + gRPC server out."""


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to create the project.")
    ] = Path("project"),
    name: Annotated[
        str,
        typer.Option("--name", help="Model name (default: the Service class name)."),
    ] = "",
    http_port: HttpPort = None,
    grpc_port: GrpcPort = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Render into a non-empty directory; replace hand-edited framework files "
            "(each edit kept in .taichu-backup/; files of yours are never replaced).",
        ),
    ] = False,
) -> None:
    """Create a new project: customize_service.py, config.ini, the server and test clients."""
    http_port = http_port or 8080
    grpc_port = grpc_port or 8081
    if name and not MODEL_NAME.match(name):
        raise UserError(f"--name {name!r}: use letters, digits, '_', '.' and '-' only")
    if http_port == grpc_port:
        raise UserError(f"--http-port and --grpc-port are both {http_port}")
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a directory")
    non_empty = directory.is_dir() and any(directory.iterdir())
    if non_empty and not force:
        raise UserError(
            f"{directory} is not empty; use --force to render into it "
            "(files of yours are never replaced)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {directory}: {error.strerror}") from None
    answers = {"model_name": name, "http_port": http_port, "grpc_port": grpc_port}
    project = directory.resolve()
    manifest = read_manifest(project)  # refuses a tampered one before any write
    code = sync_app(project, answers, manifest, force, typer.echo, listing=non_empty)
    if code:
        raise typer.Exit(code)
    typer.echo(f"Created {directory}/ (taichu-serve {__version__}). Next:")
    typer.echo(f"  cd {directory} && taichu_serve run --reload")
    typer.echo("  taichu_serve predict -i x='[[1, 2, 3, 4]]'   # in another shell")
    typer.echo("  python -m pytest tests")


def run(
    directory: Annotated[Path, typer.Argument(help="The project directory.")] = Path(
        "."
    ),
    docker: Annotated[
        bool, typer.Option("--docker", help="Run the image built by `build` instead.")
    ] = False,
    image: Annotated[
        Optional[str], typer.Option("--image", help="With --docker: the image to run.")
    ] = None,
    network: Annotated[
        Optional[str], typer.Option("--network", help="With --docker: e.g. host.")
    ] = None,
    config: ConfigPath = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="Development: replace the workers when customize_service.py, a "
            "Python file of the project, config.ini or requirements.txt changes.",
        ),
    ] = False,
    **runtime_flags: Optional[str],
) -> None:
    """Serve the project locally (HTTP and gRPC) until Ctrl-C.

    Every setting of config.ini is also a flag here, the same as `python -m
    taichu_runtime` takes; the server checks the values.
    """
    directory = directory.resolve()
    given = {name: value for name, value in runtime_flags.items() if value is not None}
    if docker:
        from .image import run_container

        settings = server_settings(directory, flag_arguments(given))
        image = image_reference(image) if image else image_name(directory)
        ports = (settings.http_port, settings.grpc_port)
        run_container(image, *ports, network, typer.echo)
        return
    argv: List[str] = []
    if config is not None:
        argv += ["--config", str(Path(config).resolve())]
    if reload:
        argv += ["--reload", "true"]
    argv += flag_arguments(given)
    exec_runtime(directory, "taichu_runtime", argv)


def exec_runtime(directory: Path, module: str, argv: List[str]) -> None:
    """Become `python -m <module> <argv>` in the project `directory` (exec: signals,
    Ctrl-C included, reach it), after checking it is a project of this version."""
    if not is_project(directory):
        hint = (
            "it looks like a taichu-serve 2.x project: create a new one with "
            "`taichu_serve init` and move model_service.py into customize_service.py"
            if looks_like_2x(directory)
            else "create one with `taichu_serve init`"
        )
        raise UserError(f"{directory} is not a taichu-serve project; {hint}")
    made_by = generated_version(directory)
    if made_by != __version__:
        typer.echo(
            f"warning: this project was generated by taichu-serve {made_by}, this is "
            f"{__version__}; run `taichu_serve regenerate` to update it",
            err=True,
        )
    os.chdir(directory)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", module, *argv])


def _with_runtime_flags(command: Callable) -> Callable:
    """Give `command` one option per setting the runtime declares (settings.py's
    OPTIONS): declared once, offered by `taichu_serve run` and `python -m
    taichu_runtime` alike."""
    signature = inspect.signature(command)
    fixed = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    added = []
    for option in runtime_settings().OPTIONS:
        if option.attr in signature.parameters:
            continue  # the command declares it itself (run's bare --reload)
        metavar = option.type.__name__.upper()
        hint = Annotated[
            Optional[str],
            typer.Option(*option.flags, help=option.help, metavar=metavar),
        ]
        added.append(
            inspect.Parameter(
                option.attr,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=hint,
            )
        )
        command.__annotations__[option.attr] = hint
    command.__signature__ = signature.replace(parameters=[*fixed, *added])  # type: ignore[attr-defined]
    return command


app.command()(_with_runtime_flags(run))


@app.command()
def predict(
    directory: Annotated[Path, typer.Argument(help="The project directory.")] = Path(
        "."
    ),
    request: Annotated[
        Optional[Path],
        typer.Option("--request", help="A v2 request body (JSON file; '-': stdin)."),
    ] = None,
    inputs: Annotated[
        Optional[List[str]],
        typer.Option(
            "--input",
            "-i",
            help="NAME=VALUE; VALUE is JSON, @file.npy, @file.json or @file (its "
            "bytes, one BYTES element); repeatable.",
        ),
    ] = None,
    output_dir: Annotated[
        Optional[Path],
        typer.Option("--output-dir", help="Write each output as DIR/NAME.npy."),
    ] = None,
    config: ConfigPath = None,
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="debug, info, warning or error (stderr)."),
    ] = "warning",
) -> None:
    """Run one request through the service in this process (no server) and print the
    v2 response, one line per streamed item."""
    if (request is None) == (not inputs):
        raise UserError("give either --request FILE.json or one or more --input")
    argv = ["--log-level", log_level]
    if request is not None:
        argv += ["--request", "-" if str(request) == "-" else str(request.resolve())]
    for given in inputs or []:
        name, equals, value = given.partition("=")
        if equals and value.startswith("@"):  # a path from here, not the project
            given = f"{name}=@{Path(value[1:]).resolve()}"
        argv += ["--input", given]
    if output_dir is not None:
        argv += ["--output-dir", str(output_dir.resolve())]
    if config is not None:
        argv += ["--config", str(Path(config).resolve())]
    exec_runtime(directory.resolve(), "taichu_runtime.predict", argv)


@app.command()
def regenerate(
    directory: Annotated[Path, typer.Argument(help="The project directory.")] = Path(
        "."
    ),
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 if the project is out of date or drifted."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace hand-edited framework files (each edit kept in .taichu-backup/).",
        ),
    ] = False,
) -> None:
    """Re-render the framework-owned files with this version; your files are never touched."""
    directory = project_directory(directory)
    code = regenerate_project(directory, check, dry_run, force, typer.echo)
    raise typer.Exit(code)


@app.command()
def build(
    directory: Annotated[Path, typer.Argument(help="The project directory.")] = Path(
        "."
    ),
    from_image: Annotated[
        str,
        typer.Option(
            "--from_image",
            "--from-image",
            help="Base image (Debian-based, with python3).",
        ),
    ] = "python:3.11-slim",
    name: Annotated[Optional[str], typer.Option("--name", help="Image name.")] = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="Image tag.")] = None,
    no_build: Annotated[
        bool,
        typer.Option(
            "--no-build", help="Only write Dockerfile, .dockerignore, launch.sh."
        ),
    ] = False,
    include_models: Annotated[
        bool, typer.Option("--include-models", help="Copy models/ into the image.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a hand-edited Dockerfile (kept in .taichu-backup/).",
        ),
    ] = False,
    build_arg: Annotated[
        Optional[List[str]],
        typer.Option(
            "--build-arg", help="KEY=VALUE, e.g. PIP_INDEX_URL=https://...; repeatable."
        ),
    ] = None,
    network: Annotated[
        Optional[str],
        typer.Option("--network", help="Network for RUN steps, e.g. host."),
    ] = None,
) -> None:
    """Write Dockerfile, .dockerignore, launch.sh and deploy/ manifests, then build the image."""
    from .deploy import manifest_data, write_manifests
    from .image import build_image, render_build_files

    directory = project_directory(directory)
    image = image_name(directory, name, tag)
    args = {}
    for item in build_arg or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--build-arg {item!r}: expected KEY=VALUE")
        args[key] = value
    args.setdefault("BASE_IMAGE", from_image)
    # A bad config.ini value stops the build here, before any file is written.
    manifests = manifest_data(directory, image)
    written = render_build_files(
        directory, from_image, image, include_models, force, typer.echo
    )
    written += write_manifests(directory, manifests, force, typer.echo)
    for path in written:
        typer.echo(f"wrote {path.relative_to(directory)}")
    if no_build:
        where = shlex.quote(str(directory))
        typer.echo(f"build it with: cd {where} && docker build -t {image} .")
        return
    image_id = build_image(directory, image, args, network, typer.echo)
    settings = server_settings(directory)
    http, grpc_port = settings.http_port, settings.grpc_port
    typer.echo(f"\nbuilt {image} ({image_id[:19]})")
    typer.echo(
        f"run it:  docker run --rm -p {http}:{http} -p {grpc_port}:{grpc_port} "
        f"-v $PWD/models:/app/models {image}"
    )
    typer.echo(f"or:      taichu_serve run --docker --image {image}")


@app.command()
def manifests(
    directory: Annotated[Path, typer.Argument(help="The project directory.")] = Path(
        "."
    ),
    image: Annotated[
        Optional[str], typer.Option("--image", help="Image the manifests run.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace hand-edited manifests (kept in .taichu-backup/)."
        ),
    ] = False,
) -> None:
    """Write deploy/kubernetes.yaml and deploy/kserve.yaml for the project's image."""
    from .deploy import manifest_data, write_manifests

    directory = project_directory(directory)
    image = image_reference(image) if image else image_name(directory)
    data = manifest_data(directory, image)
    for path in write_manifests(directory, data, force, typer.echo):
        typer.echo(f"wrote {path.relative_to(directory)}")


def project_directory(directory: Path) -> Path:
    """The resolved project directory, or a one-line error if it is not a project."""
    directory = directory.resolve()
    if not is_project(directory):
        raise UserError(
            f"{directory} is not a taichu-serve project (no taichu_runtime/)"
        )
    return directory


# Docker's reference grammar: [registry[:port]/]path/components, then :tag.
IMAGE_PATH = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def image_name(
    directory: Path, name: Optional[str] = None, tag: Optional[str] = None
) -> str:
    """NAME:TAG, by default taichu-<directory>:<this version>; a name or tag the
    engine would refuse stops here, before anything is written."""
    from .image import default_image_name

    if name is not None and not IMAGE_PATH.match(name):
        raise UserError(
            f"--name {name!r} is not an image name: lower-case letters, digits and "
            "'.', '_', '-' between them, '/' between parts (e.g. team/my-model)"
        )
    if tag is not None and not IMAGE_TAG.match(tag):
        raise UserError(
            f"--tag {tag!r} is not an image tag: up to 128 letters, digits, '_', "
            "'.' and '-', not starting with '.' or '-'"
        )
    return f"{name or default_image_name(directory)}:{tag or __version__}"


def image_reference(given: str) -> str:
    """--image as given, checked like --name and --tag."""
    path, tag = given, None
    last = given.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = given.rsplit(":", 1)
    if not IMAGE_PATH.match(path) or (tag is not None and not IMAGE_TAG.match(tag)):
        raise UserError(
            f"--image {given!r} is not an image reference (e.g. team/my-model:1)"
        )
    return given


USER_MISTAKE = 2  # the exit code of a mistake the message says how to fix


def main() -> None:
    """Every user mistake ends in one line and exit code 2; TAICHU_DEBUG=1 shows the
    traceback of a file-system error too."""
    try:
        app()
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(USER_MISTAKE)
    except OSError as error:  # a path the user gave: unwritable, impossible, missing
        if os.environ.get("TAICHU_DEBUG"):
            raise
        where = f"{error.filename}: " if error.filename else ""
        typer.echo(f"error: {where}{error.strerror or error}", err=True)
        sys.exit(USER_MISTAKE)
