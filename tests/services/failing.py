"""Identity, except that it raises when asked to: for error-path tests."""

import numpy as np

from taichu_serve import Service


class FailingService(Service):
    def _inference(self, data, context):
        if "boom" in data:
            raise ValueError("bad pixel at (3, 4)")
        if "return_list" in data:
            return [1, 2, 3]
        if "return_object" in data:
            return {"out": object()}
        if "return_none" in data:
            return None
        if "return_set" in data:
            return {1, 2}
        if "return_complex" in data:
            return {"out": np.array([1 + 2j])}
        return data
