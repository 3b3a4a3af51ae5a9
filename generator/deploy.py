"""deploy/kubernetes.yaml and deploy/kserve.yaml for an image, from config.ini's
[resources] and [server] sections: written by `build` and `manifests`."""

import re
from pathlib import Path
from typing import List

from . import config
from .config import server_settings
from .image import write_owned_files
from .ownership import DEPLOY_FILES

# preStop sleeps 5 s before SIGTERM; then the server may drain for shutdown_timeout.
PRE_STOP_SECONDS = 5


def kubernetes_name(image: str) -> str:
    """A DNS-1123 name from the image's repository name."""
    repository = image.rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return re.sub(r"[^a-z0-9-]+", "-", repository).strip("-")[:63] or "model"


def manifest_data(project: Path, image: str) -> dict:
    """What the manifests are rendered from: config.ini read once, every value checked
    (a bad one stops here, before anything is written)."""
    settings = server_settings(project)
    return {
        "image": image,
        "name": kubernetes_name(image),
        "http_port": settings.http_port,
        "grpc_port": settings.grpc_port,
        # Annotation scrapers send no token: announce /metrics only where it needs none.
        "scrape": settings.metrics and not settings.metrics_require_token,
        "grace_seconds": int(settings.shutdown_timeout) + PRE_STOP_SECONDS + 5,
        **config.resources(project),
    }


def write_manifests(project: Path, data: dict, force: bool, echo) -> List[Path]:
    return write_owned_files(project, DEPLOY_FILES, data, force, echo)
