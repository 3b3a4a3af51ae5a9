"""A model of fixed cost that takes one request at a time: COST_MS milliseconds
(environment, default 100) of work each. 2.x-style requests: `{"stats": true}` answers
how many requests ran, at once; anything else runs and answers the same."""

import os
import time

from taichu_serve import Service


class FixedCostService(Service):
    def __init__(self, model_path):
        super().__init__(model_path)
        self.cost = float(os.environ.get("COST_MS", "100")) / 1000
        self.runs = 0

    def _inference(self, data, context):
        if not data.get("stats"):
            self.runs += 1
            time.sleep(self.cost)
        return {"runs": self.runs}
