"""The client side of the agent: the ``remote:http://HOST:PORT`` device."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError, ModelFileError, SlimforgeError
from slimforge.hardware.agent._protocol import SETTINGS_HEADER, TOKEN_ENV, check_token, read_token
from slimforge.hardware.devices import (
    Device,
    DeviceError,
    DeviceInfo,
    DeviceMeasurement,
    MeasureSettings,
    PreparedModel,
    convert_beside,
    prepare_onnx,
    sha256_file,
)
from slimforge.hardware.latency import LatencyResult

__all__ = ["DEFAULT_CLIENT_TIMEOUT_S", "RemoteDevice"]

DEFAULT_CLIENT_TIMEOUT_S = 180.0


class RemoteDevice(Device):
    """A device reached through its agent (``remote:http://HOST:PORT``); measures model files and modules.

    The agent measures with the runtime named by ``runtime`` or the URL's fragment
    (``remote:http://HOST:PORT#rknn``; ONNX Runtime by default) among those its ``/v1/info``
    lists. A module is converted here first: exported to ONNX for ``onnxruntime`` and
    ``openvino``, converted to the runtime's format for the others (``.tflite``, ``.pte``,
    ``.rknn``); a file is uploaded as it is.

    Args:
        url: the agent's ``http://HOST:PORT`` (optionally ``#RUNTIME``).
        token: the agent's token; else read from ``token_file``; else from ``$SLIMFORGE_AGENT_TOKEN``.
        token_file: a file holding the token.
        timeout_s: seconds to wait for each reply (a measurement replies after its protocol ends),
            and in all for a busy agent (503) to become free.
        runtime: the agent's runtime to measure with (overrides the URL's fragment).
    """

    kind = "remote"
    takes_argument = True
    runtime = "onnxruntime"

    def __init__(
        self,
        url: str,
        token: str | None = None,
        token_file: str | os.PathLike | None = None,
        timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S,
        runtime: str | None = None,
    ) -> None:
        from slimforge.hardware.runtime import RUNTIMES

        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:  # "http://[::1" and other URLs that do not parse, or a port past 65535
            parts, port = urllib.parse.urlsplit(""), None
        chosen = runtime or parts.fragment or "onnxruntime"
        RUNTIMES.get(chosen)  # an unknown runtime: the registry's one-line error with close matches
        if chosen == "torch":
            raise InvalidInputError(
                "an agent does not run PyTorch eager (its models would have to be unpickled); "
                "use onnxruntime, litert, openvino, executorch or rknn"
            )
        self.runtime = chosen
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or port is None
            or parts.path not in ("", "/")
        ):
            raise InvalidInputError(
                f"remote device URL {url!r} must look like http://HOST:PORT, "
                "e.g. remote:http://127.0.0.1:8765"
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout_s!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._host, self._port, self._https = parts.hostname, port, parts.scheme == "https"
        self.timeout_s = float(timeout_s)
        if token is not None:
            token = check_token(token.strip(), "the token")
        elif token_file is not None:
            token = read_token(token_file)
        elif os.environ.get(TOKEN_ENV):
            token = check_token(os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
        else:
            raise InvalidInputError(
                f"device remote:{self.url} needs the agent's token: "
                f"give --token-file FILE or set ${TOKEN_ENV}"
            )
        self._token = token

    @property
    def spec(self) -> str:
        return f"remote:{self.url}" + ("" if self.runtime == "onnxruntime" else f"#{self.runtime}")

    def info(self) -> dict[str, Any]:
        """The agent's ``/v1/info`` reply (device, limits, versions)."""
        reply = self._call("GET", "/v1/info")
        if not isinstance(reply.get("device"), dict) or not isinstance(reply.get("limits"), dict):
            raise DeviceError(
                f"{self.url} answered /v1/info without a device description; is it a slimforge agent?"
            )
        return reply

    def describe(self) -> DeviceInfo:
        info = self.info()
        device = replace(self._device_info(info["device"]), name=self.spec)
        if self.runtime == "onnxruntime" and "runtimes" not in info:
            return device  # an agent from before runtimes were listed: ONNX Runtime only
        entry = self._served(info)
        return replace(
            device, runtime=self.runtime, runtime_version=entry.get("version"), delegate=entry.get("delegate")
        )

    def _served(self, info: dict[str, Any]) -> dict[str, Any]:
        served = {r.get("name"): r for r in info.get("runtimes", []) if isinstance(r, dict)}
        if self.runtime not in served:
            names = ", ".join(str(n) for n in served) or "onnxruntime"
            raise DeviceError(
                f"the agent at {self.url} does not serve the runtime {self.runtime!r}; it serves {names} "
                "(install the runtime's package on the device and restart the agent)"
            )
        return served[self.runtime]

    def _device_info(self, data: Any) -> DeviceInfo:
        try:
            return DeviceInfo.from_dict(data)
        except (SlimforgeError, TypeError) as exc:
            raise DeviceError(
                f"the agent at {self.url} sent a device description this slimforge cannot read ({exc})"
            ) from None

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        if self.runtime in ("onnxruntime", "openvino") and (
            not isinstance(model, (str, Path)) or Path(model).suffix.lower() == ".onnx"
        ):
            return prepare_onnx(model, shape, onnx_path, self.spec)
        from slimforge.hardware.runtime import RUNTIMES

        engine = RUNTIMES.get(self.runtime)()
        if isinstance(model, nn.Module):
            if shape is None:
                raise InvalidInputError(
                    f"device {self.spec}: give the input shape of the model, e.g. 1x3x32x32"
                )
            path = convert_beside(model, engine.format, onnx_path, shape)
            return PreparedModel(
                type(model).__name__, shape, sha256_file(path), onnx_path=path, precision="fp32"
            )
        if not isinstance(model, (str, Path)) or not engine.runs_file(model):
            raise InvalidInputError(
                f"device {self.spec} measures {', '.join(engine.file_suffixes)} files or PyTorch models, not {model!r}"
            )
        path = Path(model)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")
        if shape is None:
            raise InvalidInputError(
                f"device {self.spec}: give the input shape of {path.name}, e.g. 1x3x32x32"
            )
        return PreparedModel(str(model), shape, sha256_file(path), onnx_path=path)

    def _measure(self, models: Sequence[PreparedModel], settings: MeasureSettings) -> list[DeviceMeasurement]:
        info = self.info()
        if self.runtime != "onnxruntime" or "runtimes" in info:
            self._served(info)
        limit = int(info["limits"].get("max_upload_bytes", 0))
        out = []
        for m in models:
            assert m.onnx_path is not None and m.input_shape is not None
            data = m.onnx_path.read_bytes()
            if limit and len(data) > limit:
                raise InvalidInputError(
                    f"{m.label} is {len(data)} bytes, above the upload limit of the agent at {self.url} "
                    f"({limit} bytes); restart the agent with a higher --max-upload-mb"
                )
            request = {
                "input_shape": list(m.input_shape),
                "threads": settings.threads,
                "protocol": settings.protocol.to_dict(),
                "seed": settings.seed,
            }
            if (
                self.runtime != "onnxruntime"
            ):  # an older agent knows no runtime setting: sent only when needed
                request["runtime"] = self.runtime
            reply = self._call(
                "POST",
                "/v1/measure",
                data,
                {"Content-Type": "application/octet-stream", SETTINGS_HEADER: json.dumps(request)},
            )
            try:
                result = LatencyResult.from_dict(reply["latency"])
            except (KeyError, SlimforgeError, TypeError) as exc:
                raise DeviceError(
                    f"the agent at {self.url} sent a measurement this slimforge cannot read ({exc})"
                ) from None
            if reply.get("model_sha256") != m.sha256:
                raise DeviceError(
                    f"the agent at {self.url} measured other bytes than were sent (hash mismatch); retry"
                )
            info = replace(self._device_info(reply.get("device")), name=self.spec)
            out.append(DeviceMeasurement.from_latency(self.spec, info, m, result, settings.threads))
        return out

    # -- HTTP --------------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while True:
            status, reply, retry_after = self._once(method, path, body, headers or {})
            if status == 503 and time.monotonic() + retry_after < deadline:
                time.sleep(retry_after)  # one measurement at a time on the device: wait our turn
                continue
            break
        if status == 200:
            return reply
        message = str(reply.get("error") or f"HTTP {status}")
        where = f"the agent at {self.url}"
        if status == 401:
            raise DeviceError(
                f"{where} refused the token (401); "
                f"give the agent's token with --token-file FILE or ${TOKEN_ENV}"
            )
        if status in (400, 411, 413):
            raise InvalidInputError(f"{where} refused the request ({status}): {message}")
        if status == 422:
            raise ModelFileError(f"{where} cannot run the model: {message}")
        if status == 503:
            raise DeviceError(
                f"{where} stayed busy with other measurements for {self.timeout_s:g} s; retry later"
            )
        raise DeviceError(f"{where} failed ({status}): {message}")

    def _once(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict, float]:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout_s)
        where = f"the agent at {self.url}"
        try:
            conn.request(
                method, path, body=body, headers={**headers, "Authorization": f"Bearer {self._token}"}
            )
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            raise DeviceError(
                f"cannot reach {where}: connection refused; start `slimforge agent serve` on the device, "
                "or check the host and port"
            ) from None
        except TimeoutError:
            raise DeviceError(
                f"{where} did not answer within {self.timeout_s:g} s; raise --timeout or check the device"
            ) from None
        except socket.gaierror as exc:
            raise DeviceError(f"cannot resolve the host of {where} ({exc.strerror}); check the URL") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeviceError(
                f"lost the connection to {where} ({exc or type(exc).__name__}); check that the agent runs"
            ) from None
        finally:
            conn.close()
        try:
            reply = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            reply = None
        if not isinstance(reply, dict):
            raise DeviceError(
                f"{self.url} did not answer in JSON (HTTP {response.status}); is it a slimforge agent?"
            )
        try:
            retry_after = max(float(response.getheader("Retry-After") or 1.0), 0.1)
        except ValueError:
            retry_after = 1.0
        return response.status, reply, retry_after
