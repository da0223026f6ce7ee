"""Runs a real ``bosun serve`` for the tests: on 127.0.0.1:0 with a fresh
data dir, its address read from the JSON log line "bosun serving", ready once
health says SERVING. The binary is $TEST_BOSUN_BIN, else target/debug/bosun of
the repository (``cargo build`` makes it)."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import threading
from typing import IO, Dict, List, Optional

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT = 30.0
REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def bosun_binary() -> str:
    path = os.environ.get("TEST_BOSUN_BIN") or str(REPO_ROOT / "target" / "debug" / "bosun")
    if not os.path.exists(path):
        raise RuntimeError(
            f"no bosun binary at {path}: run `cargo build` at the repository root, or set TEST_BOSUN_BIN"
        )
    return path


class BosunServer:
    """One bosun process (and, after :meth:`restart`, its successor on the
    same address and data dir)."""

    def __init__(
        self, workdir: pathlib.Path, config: str = "", env: Optional[Dict[str, str]] = None
    ) -> None:
        self.data_dir = workdir / "data"
        self.address = ""
        self._config_path: Optional[pathlib.Path] = None
        if config:
            self._config_path = workdir / "bosun.toml"
            self._config_path.write_text(config)
        self._env = {**os.environ, "RUST_LOG": "info", **(env or {})}
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._log: List[str] = []

    def start(self, address: str = "127.0.0.1:0") -> None:
        args = [
            bosun_binary(), "serve",
            "--data-dir", str(self.data_dir),
            "--grpc-addr", address,
            "--http-addr", "127.0.0.1:0",
            "--log-format", "json",
        ]
        if self._config_path is not None:
            args += ["--config", str(self._config_path)]
        self._process = subprocess.Popen(args, env=self._env, stderr=subprocess.PIPE)
        bound: List[str] = []
        serving = threading.Event()
        assert self._process.stderr is not None
        threading.Thread(
            target=self._follow, args=(self._process.stderr, bound, serving), daemon=True
        ).start()
        if not serving.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError(f"bosun did not log its address; log:\n{self.log}")
        if not bound:
            raise RuntimeError(f"bosun exited before serving; log:\n{self.log}")
        self.address = bound[0]
        self._wait_serving()

    def stop(self) -> None:
        """SIGTERM, then wait until bosun exited."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise RuntimeError(f"bosun did not stop on SIGTERM; log:\n{self.log}")
        finally:
            self._process = None

    def restart(self) -> None:
        """Stops bosun and starts it again on the same address and data dir."""
        self.stop()
        self.start(self.address)

    @property
    def log(self) -> str:
        return "\n".join(self._log)

    def _follow(self, stderr: IO[bytes], bound: List[str], serving: threading.Event) -> None:
        for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            self._log.append(line)
            try:
                fields = json.loads(line).get("fields", {})
            except ValueError:
                continue
            if fields.get("message") == "bosun serving" and not serving.is_set():
                bound.append(fields["grpc_addr"])
                serving.set()
        serving.set()  # bosun exited: unblock start()

    def _wait_serving(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            responses = health.Watch(
                health_pb2.HealthCheckRequest(), timeout=START_TIMEOUT, wait_for_ready=True
            )
            for response in responses:
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    responses.cancel()
                    return
        raise RuntimeError(f"bosun never became SERVING; log:\n{self.log}")
