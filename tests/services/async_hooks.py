"""Async and sync hooks mixed; the context carries what the hooks need."""

import asyncio

import numpy as np

from taichu_serve import Service


class AsyncService(Service):
    async def _preprocess(self, input_data, context):
        await asyncio.sleep(0.001)
        return input_data

    def _inference(self, data, context):
        return {name: np.asarray(value) * 2 for name, value in data.items()}

    async def _postprocess(self, data, context):
        data["request_id"] = context["request_id"]
        data["protocol"] = context["protocol"]
        data["header"] = context["headers"].get("x-test", "")
        return data
