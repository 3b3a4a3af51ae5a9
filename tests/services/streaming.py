"""Streams tokens; keeps a counter in the stream's context; records generator clean-up.

Everything is steered by request parameters: mode = tokens | async | count | error | stats.
It also records the most hooks (or generator steps) it ever saw running at once.
"""

import asyncio
import contextlib
import threading
import time

from taichu_serve import Service


class StreamingService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.finally_runs = 0
        self.stream_contexts = []
        self._lock = threading.Lock()
        self.running = self.most_at_once = 0

    @contextlib.contextmanager
    def _busy(self):
        """Counts what runs at once; the service is not thread-safe, so: never two."""
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.0005)  # long enough for an overlap to show
            yield
        finally:
            with self._lock:
                self.running -= 1

    def _inference(self, data, context):
        with self._busy():
            return data

    def _postprocess(self, data, context):
        options = context["parameters"]
        mode = options.get("mode", "tokens")
        if mode == "stats":
            return {
                "most_at_once": self.most_at_once,
                "finally_runs": self.finally_runs,
                # contexts of finished streams are emptied by the server
                "open_contexts": sum(1 for c in self.stream_contexts if c),
                "produced": getattr(self, "produced", 0),
                "produced_in_all": getattr(self, "produced_in_all", 0),
            }

        count = int(options.get("n", 5))
        delay = float(options.get("delay", 0))
        if mode == "count":
            if "count" not in context:
                self.stream_contexts.append(context)
            context["count"] = context.get("count", 0) + 1
            return {"count": context["count"]}
        if mode == "error":
            raise ValueError("this message is bad")
        if mode == "async":
            return self._async_tokens(count, delay)
        if mode == "big":
            return self._big_items(count)

        return self._tokens(count, delay, int(options.get("fail_at", -1)))

    def _tokens(self, count, delay, fail_at):
        try:
            for index in range(count):
                with self._busy():
                    if delay:
                        time.sleep(delay)
                if index == fail_at:
                    raise RuntimeError(f"failed at item {index}")
                yield {"index": index, "token": f"tok{index}"}
        finally:
            self.finally_runs += 1

    def _big_items(self, count):
        self.produced = 0
        for index in range(count):
            self.produced += 1
            self.produced_in_all = getattr(self, "produced_in_all", 0) + 1
            yield {"index": index, "blob": "x" * 65536}

    async def _async_tokens(self, count, delay):
        try:
            for index in range(count):
                await asyncio.sleep(delay)
                yield f"tok{index}"  # not a dict: sent as {"text_output": ...}
        finally:
            self.finally_runs += 1
