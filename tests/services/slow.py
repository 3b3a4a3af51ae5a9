"""Takes a while per request, and records how many requests it saw at once."""

import threading
import time

from taichu_serve import Service


class SlowService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0

    def _inference(self, data, context):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.02)
        with self.lock:
            self.active -= 1
        return {**data, "most_at_once": self.most}
