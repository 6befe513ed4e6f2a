"""The local endpoint: one model served over the SageMaker inference container contract.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` takes
``text/csv`` or ``application/json`` (``Content-Type``) and answers in the type the
``Accept`` header picks (default: the request's type). The work is done by the
serving functions of ``jobs/inference.py`` (``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``), exactly as the SageMaker scikit-learn container calls them.

Successful invocations can be recorded in SageMaker's data-capture format by a
:class:`CaptureWriter`, into the capture bucket (S3 through boto3, moto included)
or into a local folder with the same layout.

The HTTP server is one asyncio event loop (``asyncio.Protocol``, requests parsed by
h11), answering every request inline on the loop's thread: the model call is CPU-bound
and holds the GIL, so more threads only add GIL hand-offs. HTTP/1.1 keep-alive and
pipelining, ``Content-Length`` always set, every response (status line, headers and
body) sent in one write with ``TCP_NODELAY`` on, and no per-request logging. A response
split over two small packets would stall a keep-alive client for the delayed-ACK
timeout (~40 ms) on every request.
"""

from lambdas.constants import BASELINE_FILE, EVALUATION_FILE, MODEL_FILE
from mlops.endpoint.capture import DEFAULT_VARIANT, CaptureWriter
from mlops.endpoint.connection import MAX_PAYLOAD_BYTES
from mlops.endpoint.errors import EndpointError, InvocationError, PortInUse
from mlops.endpoint.media import CSV, JSON, SUPPORTED_TYPES
from mlops.endpoint.model import LocalModel, ServingModule, load_model
from mlops.endpoint.server import EndpointServer, make_server, serve

__all__ = [
    "BASELINE_FILE",
    "CSV",
    "DEFAULT_VARIANT",
    "EVALUATION_FILE",
    "JSON",
    "MAX_PAYLOAD_BYTES",
    "MODEL_FILE",
    "SUPPORTED_TYPES",
    "CaptureWriter",
    "EndpointError",
    "EndpointServer",
    "InvocationError",
    "LocalModel",
    "PortInUse",
    "ServingModule",
    "load_model",
    "make_server",
    "serve",
]
