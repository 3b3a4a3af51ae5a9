"""A model package as written for taichu-serve 2.x (its documented template, extended)."""

import logging

from taichu_serve import ModelServer

logger = logging.getLogger(__name__)


class ModelService(ModelServer):
    def __init__(self, model_path):
        super(ModelService, self).__init__(model_path)
        logger.info("self.model_path: %s", model_path)

    def _preprocess(
        self, input_data, context={}
    ):  # noqa: B006 (as 2.x templates wrote it)
        return input_data

    def _inference(
        self, preprocessed_result, context={}
    ):  # noqa: B006 (as 2.x templates wrote it)
        result = dict(preprocessed_result)
        result["count"] = len(preprocessed_result)
        result["big"] = 2**53 + 1
        result["nested"] = {"keys": sorted(preprocessed_result), "none": None}
        result["request_id"] = context["request_id"]
        return result

    def _postprocess(
        self, inference_result, context={}
    ):  # noqa: B006 (as 2.x templates wrote it)
        return inference_result

    def _warmup(self):
        logger.info("warmup finished")
