"""deploy/kubernetes.yaml and deploy/kserve.yaml for an image, from config.ini's
[resources] and [server] sections: written by `build` and `manifests`."""

import re
from pathlib import Path
from typing import List

from .image import ports, write_owned_files
from .ownership import DEPLOY_FILES
from .project import read_config

# preStop sleeps 5 s before SIGTERM; then the server may drain for shutdown_timeout.
PRE_STOP_SECONDS = 5


def kubernetes_name(image: str) -> str:
    """A DNS-1123 name from the image's repository name."""
    repository = image.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return re.sub(r"[^a-z0-9-]+", "-", repository).strip("-")[:63] or "model"


def resources(project: Path) -> dict:
    parser = read_config(project / "config.ini")
    section = "resources"
    timeout = parser.getfloat("server", "shutdown_timeout", fallback=30.0)
    return {
        "cpu": parser.get(section, "cpu", fallback="1"),
        "memory": parser.get(section, "memory", fallback="2Gi"),
        "gpu": parser.getint(section, "gpu", fallback=0),
        "min_replicas": parser.getint(section, "min_replicas", fallback=1),
        "max_replicas": parser.getint(section, "max_replicas", fallback=4),
        "grace_seconds": int(timeout) + PRE_STOP_SECONDS + 5,
    }


def render_manifests(project: Path, image: str, force: bool, echo) -> List[Path]:
    data = {
        "image": image,
        "name": kubernetes_name(image),
        **ports(project),
        **resources(project),
    }
    return write_owned_files(project, DEPLOY_FILES, data, force, echo)
