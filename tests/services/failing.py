"""Identity, except that it raises when asked to: for error-path tests."""

from taichu_serve import Service


class FailingService(Service):
    def _inference(self, data, context):
        if "boom" in data:
            raise ValueError("bad pixel at (3, 4)")
        if "return_list" in data:
            return [1, 2, 3]
        if "return_object" in data:
            return {"out": object()}
        return data
