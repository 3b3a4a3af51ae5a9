"""What one accepted request costs the worker in memory, at the largest size the
default limits let through, for each way a tensor can travel.

    python benchmarks/request_memory.py

Starts a generated server (one worker) whose service answers with the size of what
it got (tests/services/sizes.py), then, for each kind of request: resets the
worker's peak resident size (/proc/PID/clear_refs), sends one request, and reads
the new peak (VmHWM). Prints the wire size, the growth of the peak, and their ratio;
then the same for three of the worst kind at once. Not part of CI: Linux only.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
from common import REPO, free_port, render_project, server_command, wait_ready
from tritonclient.grpc import service_pb2 as pb2

MiB = 1024 * 1024
WIRE = 64 * MiB  # max_request_size's default
DECODED = 32 * MiB  # max_decoded_size's default
JSON_VALUE, BYTES_ELEMENT = 64, 64  # taichu_runtime/budget.py's counts
MODEL = "SizeService"


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def json_body(datatype: str, data: bytes, count: int) -> bytes:
    head = '{"inputs":[{"name":"x","datatype":"%s","shape":[%d],"data":[' % (
        datatype,
        count,
    )
    return head.encode() + data + b"]}]}"


def binary_body(datatype: str, raw: bytes, count: int):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [count],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    return header + raw, {"inference-header-content-length": str(len(header))}


def grpc_request(datatype: str, count: int, raw: bytes = b"", contents=None):
    request = pb2.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="x", datatype=datatype, shape=[count])
    if raw:
        request.raw_input_contents.append(raw)
    else:
        field = "fp32_contents" if datatype == "FP32" else "bytes_contents"
        getattr(tensor.contents, field).extend(contents)
    return request


def packed(items: int) -> bytes:
    return (b"\x02\x00\x00\x00ab") * items


def kinds():
    """(name, protocol, payload): the largest request of each kind the defaults take."""
    numbers = DECODED // (JSON_VALUE + 4) - 100
    text = b",".join([b"0.123456789"] * numbers)
    yield "HTTP JSON FP32", "http", (json_body("FP32", text, numbers), {})
    strings = DECODED // (JSON_VALUE + BYTES_ELEMENT + 2) - 100
    text = b",".join([b'"ab"'] * strings)
    yield "HTTP JSON BYTES (2-byte strings)", "http", (
        json_body("BYTES", text, strings),
        {},
    )
    floats = (WIRE - 4096) // 4
    raw = np.zeros(floats, "<f4").tobytes()
    yield "HTTP binary FP32", "http", binary_body("FP32", raw, floats)
    elements = DECODED // (BYTES_ELEMENT + 6) - 100
    yield "HTTP binary BYTES (2-byte elements)", "http", binary_body(
        "BYTES", packed(elements), elements
    )
    yield "gRPC raw FP32", "grpc", grpc_request("FP32", floats, raw)
    yield "gRPC raw BYTES (2-byte elements)", "grpc", grpc_request(
        "BYTES", elements, packed(elements)
    )
    typed = DECODED // 4 - 100
    yield "gRPC typed FP32", "grpc", grpc_request(
        "FP32", typed, contents=np.zeros(typed, "f4")
    )
    items = DECODED // (BYTES_ELEMENT + 2) - 100
    yield "gRPC typed BYTES (2-byte elements)", "grpc", grpc_request(
        "BYTES", items, contents=[b"ab"] * items
    )


def send(protocol: str, payload, http: str, channel) -> str:
    if protocol == "http":
        body, headers = payload
        reply = httpx.post(
            f"{http}/v2/models/{MODEL}/infer",
            content=body,
            headers={"content-type": "application/json", **headers},
            timeout=120,
        )
        return str(reply.status_code)
    infer = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=pb2.ModelInferRequest.SerializeToString,
        response_deserializer=pb2.ModelInferResponse.FromString,
    )
    try:
        infer(payload, timeout=120)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def wire_size(protocol: str, payload) -> int:
    return len(payload[0]) if protocol == "http" else payload.ByteSize()


def measure(worker: int, run, *args):
    """(growth of the worker's peak resident size while run(*args) runs, in bytes,
    what run returned)."""
    time.sleep(1.5)  # the memory of what came before is given back (freed_memory.py)
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # peak := current
    before = status_kb(worker, "VmRSS")
    result = run(*args)
    return (status_kb(worker, "VmHWM") - before) * 1024, result


class Server:
    """A fresh server for each measurement: no memory left over from the last."""

    def __init__(self, project: Path) -> None:
        http_port, grpc_port = free_port(), free_port()
        command = server_command(project, {}).format(http=http_port, grpc=grpc_port)
        self.process = subprocess.Popen(
            ["sh", "-c", f"exec {command}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = f"http://127.0.0.1:{http_port}"
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{grpc_port}", options=[("grpc.max_send_message_length", -1)]
        )
        wait_ready(self.http)
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        )
        self.worker = int(children.stdout.split()[0])

    def send(self, protocol: str, payload, times: int = 1) -> str:
        """Send `payload` `times` times at once; the first answer."""
        answers: list = []
        senders = [
            threading.Thread(
                target=lambda: answers.append(
                    send(protocol, payload, self.http, self.channel)
                )
            )
            for _ in range(times)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        return answers[0]

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        shutil.copy(
            REPO / "tests" / "services" / "sizes.py", project / "customize_service.py"
        )
        print("| request | wire | answer | worker's peak grows by | × wire |")
        print("|---|---|---|---|---|")
        worst = (0.0, "", "", None, 0)
        for name, protocol, payload in kinds():
            size = wire_size(protocol, payload)
            server = Server(project)
            try:
                grown, answer = measure(server.worker, server.send, protocol, payload)
            finally:
                server.stop()
            print(
                f"| {name} | {size / MiB:.1f} MB | {answer} | "
                f"{grown / MiB:.0f} MB | {grown / size:.1f} |"
            )
            worst = max(worst, (grown / size, name, protocol, payload, size))
        _, name, protocol, payload, size = worst
        server = Server(project)
        try:
            grown, _ = measure(server.worker, server.send, protocol, payload, 3)
        finally:
            server.stop()
        print(
            f"| 3 × {name} at once | {3 * size / MiB:.1f} MB | | "
            f"{grown / MiB:.0f} MB | {grown / (3 * size):.1f} |"
        )


if __name__ == "__main__":
    sys.exit(main())
