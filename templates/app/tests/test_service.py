"""customize_service.py in this process: the sample request through the server's own
decode -> hooks -> encode steps (no ports). Add tests of your own model's answers here.
"""

from math import prod

from taichu_runtime.in_process import outputs_of


def check_response(response, model) -> None:
    """A v2 response: tensors whose data fits their shape, each declared output with
    its declared datatype (or, for a 2.x-style request, parameters)."""
    assert response["model_name"] == model.name
    if "parameters" in response and "outputs" not in response:
        return  # a parameters-only (2.x-style) answer
    outputs = response["outputs"]
    assert outputs, "the model returned no outputs"
    for output in outputs:
        assert len(output["data"]) == prod(output["shape"]), output["name"]
    assert set(outputs_of(response)) == {o["name"] for o in outputs}
    returned = {output["name"]: output["datatype"] for output in outputs}
    for declared in model.metadata()["outputs"]:
        assert declared["name"] in returned, f"declared output {declared['name']}"
        if "datatype" in declared:
            assert returned[declared["name"]] == declared["datatype"]


def test_the_sample_request_gets_a_v2_response(model, sample_request):
    responses = list(model.stream(sample_request))
    assert responses, "the model streamed no items"
    for response in responses:
        check_response(response, model)


def test_metadata_names_the_model(model):
    metadata = model.metadata()
    assert metadata["name"] == model.name
    assert metadata["versions"] == [model.settings.model_version]
