"""Echoes, unless asked to hang: `{"hang": true}` (a 2.x-style request) never returns,
as a model stuck in native code would not. Counts the workers it was loaded in."""

import os
import time

from taichu_serve import Service


class HangingService(Service):
    def _inference(self, data, context):
        if context["parameters"].get("hang"):
            while True:
                time.sleep(1)
        return {"pid": os.getpid()}
