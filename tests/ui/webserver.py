"""Start, wait for and stop a real `dagster dev` (webserver + daemon) for the UI tests.

Why `dagster dev` and not `dagster-webserver` alone: it is what the README tells users to run, and a default instance
queues runs (QueuedRunCoordinator) that only the daemon dequeues; the webserver alone would leave a launched run QUEUED
unless the instance were reconfigured into a setup nobody uses. Runs are then launched by the DefaultRunLauncher in
their own process, exactly as for a user.

Process handling: the server starts in its own session (so its process group holds the webserver, the daemon, the code
server and every run worker), with SIGINT restored to its default (dagster maps SIGTERM onto the SIGINT handler, and a
parent started with `&` in a script passes SIGINT on as ignored). Stopping sends SIGTERM to the group, then SIGKILL
after a timeout. All output goes to one log file that the tests attach to failure reports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

DAGSTER_YAML = """\
# Written by tests/ui: a throwaway instance. No telemetry (tests stay off the network), no first-run dialog.
telemetry:
  enabled: false
nux:
  enabled: false
"""


class WebserverError(RuntimeError):
    """The webserver did not come up, its code location failed to load, or a GraphQL call returned errors."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the tiny race before dagster binds it is acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _default_sigint() -> None:
    """Runs in the child before exec: undo an inherited 'ignore SIGINT' so that SIGTERM stops dagster."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DagsterDev:
    """One `dagster dev -w WORKSPACE` on 127.0.0.1 with its own DAGSTER_HOME and DEEPIMAGINE_HOME."""

    def __init__(self, workspace: Path, dagster_home: Path, deepimagine_home: Path, log_path: Path,
                 host: str = "127.0.0.1"):
        self.workspace = Path(workspace)
        self.dagster_home = Path(dagster_home)
        self.deepimagine_home = Path(deepimagine_home)
        self.log_path = Path(log_path)
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen | None = None
        self.http = httpx.Client(base_url=self.url, timeout=60.0, trust_env=False)

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and return once the webserver answers and the code location has loaded."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        self.deepimagine_home.mkdir(parents=True, exist_ok=True)
        (self.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The offline default: no project setting leaks in from the caller (trial source, CT Open files, executor).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEEPIMAGINE_", "DAGSTER_"))}
        env.update(DAGSTER_HOME=str(self.dagster_home), DEEPIMAGINE_HOME=str(self.deepimagine_home),
                   PYTHONUNBUFFERED="1",
                   DEEPIMAGINE_AUTOMATION="off")  # the tests launch their own runs; no automation run beside them
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(self.workspace),
                   "--host", self.host, "--port", str(self.port)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workspace.parent, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint,
            )
        deadline = time.monotonic() + timeout
        self._wait_for_http(deadline)
        self._wait_for_code_location(deadline)

    def _alive_or_raise(self) -> None:
        if self.process.poll() is not None:
            raise WebserverError(f"dagster dev exited with code {self.process.returncode}:\n{self.log_tail()}")

    def _wait_for_http(self, deadline: float) -> None:
        while True:
            self._alive_or_raise()
            try:
                if self.http.get("/server_info", timeout=5.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise WebserverError(f"{self.url}/server_info did not answer in time:\n{self.log_tail()}")
            time.sleep(0.5)

    def _wait_for_code_location(self, deadline: float) -> None:
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
            locationOrLoadError { __typename ... on PythonError { message stack } } } }
            ... on PythonError { message } } }"""
        while True:
            self._alive_or_raise()
            workspace = self.graphql(query)["workspaceOrError"]
            entries = workspace.get("locationEntries") or []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
                if errors:
                    details = "\n".join(f"{e['name']}: {e['locationOrLoadError']['message']}" for e in errors)
                    raise WebserverError(f"code location failed to load in the webserver:\n{details}")
                return
            if time.monotonic() > deadline:
                raise WebserverError(f"code location still loading: {workspace}\n{self.log_tail()}")
            time.sleep(0.5)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        """POST a query to /graphql as the UI does; return `data`, or raise with the server's errors."""
        response = self.http.post("/graphql", json={"query": query, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise WebserverError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the whole process group, SIGKILL what is left after `timeout`. Returns the exit code."""
        self.http.close()
        if self.process is None:
            return None
        pgid = self.process.pid  # the session leader: its pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:  # children finishing their own shutdown
            time.sleep(0.2)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        return self.process.returncode

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
