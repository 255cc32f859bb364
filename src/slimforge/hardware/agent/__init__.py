"""The measurement agent: an HTTP server on the edge device, and the ``remote:`` device that calls it.

``slimforge agent serve --port P --token-file F`` runs :class:`AgentServer` on the device. It
accepts an ONNX model and measurement settings, measures the model with its local ONNX Runtime
(:func:`~slimforge.hardware.measure_latency`) and answers with the figures and the device's
description. The client side is :class:`RemoteDevice` (``--device remote:http://HOST:PORT``).

The protocol (JSON replies; errors are ``{"error": "..."}`` with a 4xx/5xx status):

- ``GET /v1/info`` → ``{"api", "slimforge", "device", "limits"}``.
- ``POST /v1/measure``: the ``.onnx`` bytes as the body, the settings as JSON in the
  ``X-Slimforge-Settings`` header (``input_shape``, ``threads``, ``protocol``, ``seed``) →
  ``{"latency": LatencyResult, "device": DeviceInfo, "model_sha256"}``.

Safety: every request needs ``Authorization: Bearer TOKEN`` (compared with
:func:`hmac.compare_digest`; a wrong token gets 401 before anything is read or run; the agent
serves only with a token of 16 characters or more). Nothing a request sends can wedge the agent
(:class:`AgentLimits`):

- uploads above ``max_upload_bytes`` get 413; the body is read and dropped so that the client
  sees the status rather than a reset;
- settings above ``max_threads`` or an input above ``max_input_elements`` get 400, a protocol
  that could outlast ``max_seconds`` gets 400;
- every upload is measured in a separate process (:mod:`._child`) under an address-space limit
  (``max_memory_bytes``); a model that outlasts ``max_seconds`` (a ``Loop`` of 10**15
  iterations) gets 504 and its process is killed, and a model that crashes it gets 500; either
  way a fresh process measures the next request;
- one measurement runs at a time: a request that arrives meanwhile gets **503 with Retry-After**
  at once (it does not queue on the device), as does a connection beyond ``max_connections``;
  :class:`RemoteDevice` retries a 503 until its own timeout;
- an upload that is not a valid ONNX model gets 400, one ONNX Runtime cannot run gets 422.

The server listens on 127.0.0.1 unless told otherwise; the token travels in clear text, so
expose it beyond loopback only on a trusted network. ``slimforge agent bench`` checks all this
under load (:func:`bench_agent`).
"""

from __future__ import annotations

from slimforge.hardware.agent._bench import AgentBenchResult, bench_agent, runaway_model
from slimforge.hardware.agent._client import DEFAULT_CLIENT_TIMEOUT_S, RemoteDevice
from slimforge.hardware.agent._protocol import (
    API_VERSION,
    MIN_TOKEN_CHARS,
    SETTINGS_HEADER,
    TOKEN_ENV,
    AgentLimits,
    read_token,
    write_token,
)
from slimforge.hardware.agent._server import AgentServer

__all__ = [
    "API_VERSION",
    "DEFAULT_CLIENT_TIMEOUT_S",
    "MIN_TOKEN_CHARS",
    "SETTINGS_HEADER",
    "TOKEN_ENV",
    "AgentBenchResult",
    "AgentLimits",
    "AgentServer",
    "RemoteDevice",
    "bench_agent",
    "read_token",
    "runaway_model",
    "write_token",
]
