"""A thread-safe model steered by request parameters: sleeps, logs, counts, fails, crashes."""

import ctypes
import logging
import threading
import time

from taichu_serve import Service

logger = logging.getLogger(__name__)


class GovernedService(Service):
    thread_safe = True

    def __init__(self, model_path):
        super().__init__(model_path)
        self.lock = threading.Lock()
        self.calls = 0

    def _inference(self, data, context):
        options = context["parameters"]
        with self.lock:
            self.calls += 1
            calls = self.calls
        logger.info("inference for %s", context["request_id"])
        if options.get("crash"):
            ctypes.string_at(0)  # a segfault, as a broken native extension would cause
        if options.get("fail"):
            raise RuntimeError("asked to fail")
        time.sleep(float(options.get("delay", 0)))
        if context.get("protocol") == "warmup" or "x" not in data:
            return {"calls": calls}
        return {"x": data["x"], "calls": calls}
