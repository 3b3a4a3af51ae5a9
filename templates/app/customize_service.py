"""Your model service: the one file of this project you write.

The server loads the one Service subclass defined here, calls __init__ and _warmup
once per worker process, then for every request:
    _preprocess(input_data, context) -> _inference(...) -> _postprocess(...)
on a worker thread. Hooks may also be `async def`.

input_data: {input name: numpy array} for a v2 request with `inputs`; the request's
            `parameters` dict for a 2.x-style request that sends only parameters.
return:     {output name: numpy array, scalar, str or bytes}; for a 2.x-style
            request, a dict that becomes the response's `parameters`.
context:    a dict per request: request_id, model_name, model_version, parameters,
            headers (HTTP headers or gRPC metadata), protocol ("http", "grpc", or
            "warmup" while the warm-up file is replayed).

Set `thread_safe = True` on the class if one instance may serve several requests at
once; otherwise requests take turns. Run it with `taichu_serve run`.

Dynamic batching ([batching] max_batch_size > 1 in config.ini): _preprocess and
_postprocess still run per request, but _inference(batch, contexts) receives a list of
preprocessed results (and the list of their contexts) and returns a list of the same
length and order; an Exception in that list fails only its own request.
"""

import logging

from taichu_serve import Service

logger = logging.getLogger(__name__)


class ModelService(Service):
    """An identity model: every input tensor comes back as an output of the same name."""

    def __init__(self, model_path):
        super().__init__(model_path)
        # Load your weights from model_path (the project's models/ directory) here.
        logger.info("model_path: %s", model_path)

    def _preprocess(self, input_data, context):
        logger.debug("request %s: _preprocess", context["request_id"])
        return input_data

    def _inference(self, preprocessed_result, context):
        logger.debug("request %s: _inference", context["request_id"])
        return preprocessed_result

    def _postprocess(self, inference_result, context):
        logger.debug("request %s: _postprocess", context["request_id"])
        return inference_result

    def _warmup(self):
        logger.info("warm-up finished")
