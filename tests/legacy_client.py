"""A taichu-serve 2.x gRPC client, built from the 2.x wire format (package taichu_infer).

The messages are declared here in a private descriptor pool, field for field as 2.x
shipped them (InferParameter: bool_param=1, float_param=2 as a 32-bit float,
string_param=3), so the tests talk to the server exactly as a 2.x client does.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="taichu_2x_client.proto", package="taichu_infer", syntax="proto3"
    )
    param = fd.message_type.add(name="InferParameter")
    param.oneof_decl.add(name="parameter_choice")
    for name, number, kind in (
        ("bool_param", 1, F.TYPE_BOOL),
        ("float_param", 2, F.TYPE_FLOAT),
        ("string_param", 3, F.TYPE_STRING),
    ):
        param.field.add(
            name=name, number=number, type=kind, label=F.LABEL_OPTIONAL, oneof_index=0
        )
    for message in ("ModelInferRequest", "ModelInferResponse"):
        m = fd.message_type.add(name=message)
        for name, number in (("model_name", 1), ("model_version", 2), ("id", 3)):
            m.field.add(
                name=name, number=number, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL
            )
        entry = m.nested_type.add(name="ParametersEntry")
        entry.options.map_entry = True
        entry.field.add(
            name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL
        )
        entry.field.add(
            name="value",
            number=2,
            type=F.TYPE_MESSAGE,
            type_name=".taichu_infer.InferParameter",
            label=F.LABEL_OPTIONAL,
        )
        m.field.add(
            name="parameters",
            number=4,
            type=F.TYPE_MESSAGE,
            type_name=f".taichu_infer.{message}.ParametersEntry",
            label=F.LABEL_REPEATED,
        )
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
InferParameter = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("taichu_infer.InferParameter")
)
ModelInferRequest = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("taichu_infer.ModelInferRequest")
)
ModelInferResponse = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("taichu_infer.ModelInferResponse")
)


def model_infer(channel):
    return channel.unary_unary(
        "/taichu_infer.GRPCInferenceService/ModelInfer",
        request_serializer=ModelInferRequest.SerializeToString,
        response_deserializer=ModelInferResponse.FromString,
    )


def model_stream_infer(channel):
    return channel.stream_stream(
        "/taichu_infer.GRPCInferenceService/ModelStreamInfer",
        request_serializer=ModelInferRequest.SerializeToString,
        response_deserializer=ModelInferResponse.FromString,
    )


def as_dict(parameters) -> dict:
    return {
        key: getattr(value, value.WhichOneof("parameter_choice"))
        for key, value in parameters.items()
    }
