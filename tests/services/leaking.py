"""Leaks: each request keeps `leak_mb` more megabytes (default 0) for as long as the
process lives, as a model with a growing cache would. Answers with its pid."""

import os

from taichu_serve import Service


class LeakingService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.kept = []

    def _inference(self, data, context):
        megabytes = int(context["parameters"].get("leak_mb", 0))
        if megabytes:
            self.kept.append(bytearray(b"\x01") * (megabytes << 20))  # resident
        return {"pid": os.getpid()}
