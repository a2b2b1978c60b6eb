"""A local Flower federation (one SuperLink, one SuperNode per bank) started as subprocesses.

Used by ``tests/test_deployment.py``. Every process is started here with its PID recorded and
its output in a log file; :meth:`LocalFederation.close` stops each of them by PID, together
with the helper processes Flower started under them, even when a test failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONNECTION = "fl-credit-test"


def free_port_block(count: int, attempts: int = 200) -> int:
    """First of ``count`` consecutive loopback ports that are free right now."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        if all(_port_free(first + k) for k in range(count)):
            return first
    raise RuntimeError(f"no block of {count} free ports found")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> list[int]:
    """PIDs of every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop_pid(pid: int, grace: float) -> None:
    """SIGTERM ``pid``, then SIGKILL it if it is still running after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (empty when missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Started:
    """A process this helper started."""

    name: str
    popen: subprocess.Popen
    log: Path


class LocalFederation:
    """SuperLink, SuperNodes and the ``flwr`` CLI on loopback, all under one folder.

    Parameters
    ----------
    root : pathlib.Path
        Scratch folder: ``FLWR_HOME``, logs and the SuperLink's working directory.
    port : int
        The SuperLink's port (Fleet, Control and Runtime API share it in Flower 1.41).
    ca_cert : pathlib.Path
        The CA certificate the SuperNodes and the CLI verify the SuperLink with.
    """

    def __init__(self, root: Path, port: int, ca_cert: Path) -> None:
        self.root = root
        self.port = port
        self.ca_cert = ca_cert
        self.home = root / "flwr_home"
        self.logs = root / "logs"
        self.procs: dict[str, Started] = {}
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._write_connection()

    @property
    def address(self) -> str:
        """``host:port`` of the SuperLink."""
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment of every Flower process: private FLWR_HOME, no network calls."""
        env = dict(os.environ)
        env.update(
            {
                "FLWR_HOME": str(self.home),
                "FLWR_TELEMETRY_ENABLED": "0",
                "FLWR_DISABLE_UPDATE_CHECK": "1",
                "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
                "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2",
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _write_connection(self) -> None:
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f"[superlink.{CONNECTION}]\n"
            f'address = "{self.address}"\n'
            f'root-certificates = "{self.ca_cert}"\n'
        )

    def start(self, name: str, command: Sequence[str]) -> Started:
        """Start ``command`` (a Flower executable) with its output in ``logs/<name>.log``."""
        log = self.logs / f"{name}.log"
        handle = log.open("wb")
        argv = [str(BIN / command[0]), *command[1:]]
        popen = subprocess.Popen(
            argv, cwd=self.root, env=self.env(), stdout=handle, stderr=subprocess.STDOUT
        )
        handle.close()
        self.procs[name] = Started(name, popen, log)
        return self.procs[name]

    def wait_for_port(self, timeout: float = 60.0) -> None:
        """Block until the SuperLink accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive("superlink")
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"SuperLink did not open port {self.port} within {timeout}s")

    def wait_for_line(self, name: str, text: str, timeout: float = 60.0, count: int = 1) -> None:
        """Block until ``text`` appears ``count`` times in process ``name``'s log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tail(self.procs[name].log, 100_000).count(text) >= count:
                return
            self.check_alive(name)
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not log {text!r} x{count} within {timeout}s")

    def check_alive(self, name: str) -> None:
        """Raise if process ``name`` has exited."""
        code = self.procs[name].popen.poll()
        if code is not None:
            raise RuntimeError(f"{name} exited with code {code}:\n{tail(self.procs[name].log)}")

    def flwr(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run the ``flwr`` CLI; raises with its output when it fails."""
        done = subprocess.run(
            [str(BIN / "flwr"), *args],
            cwd=self.root,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flwr {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def register(self, public_keys: dict[str, Path]) -> None:
        """Register each bank's public key under its name (``flwr supernode register``)."""
        base = [str(BIN / "flwr"), "supernode", "register"]
        running = {
            name: subprocess.Popen(
                [*base, str(key), CONNECTION, "--name", name],
                cwd=self.root,
                env=self.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, key in public_keys.items()
        }
        for name, popen in running.items():
            output, _ = popen.communicate(timeout=120)
            if popen.returncode != 0:
                raise RuntimeError(f"registering {name} failed:\n{output}")

    def submit(self, app_dir: Path, run_config: Path) -> int:
        """``flwr run`` the app with a run-config file; returns the run id."""
        done = self.flwr(
            "run", str(app_dir), CONNECTION, "--run-config", str(run_config), "--format", "json"
        )
        return int(json.loads(done.stdout)["run-id"])

    def run_status(self, run_id: int) -> dict:
        """The run's entry from ``flwr list --run-id``."""
        done = self.flwr("list", CONNECTION, "--run-id", str(run_id), "--format", "json")
        return json.loads(done.stdout)["runs"][0]

    def wait_finished(self, run_id: int, timeout: float = 300.0, poll: float = 3.0) -> dict:
        """Poll ``flwr list`` until the run's status starts with ``finished``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if str(status["status"]).startswith("finished"):
                return status
            self.check_alive("superlink")
            time.sleep(poll)
        raise TimeoutError(f"run {run_id} not finished within {timeout}s")

    def run_log(self, run_id: int) -> str:
        """The run's ServerApp log (``flwr log --show``)."""
        return self.flwr("log", str(run_id), CONNECTION, "--show").stdout

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to process ``name`` and wait for it to exit."""
        popen = self.procs[name].popen
        popen.send_signal(sig)
        popen.wait(timeout=30)

    def report(self, lines: int = 40) -> str:
        """The tail of every log, for a failing test."""
        return "\n".join(
            f"----- {name} ({s.log}) -----\n{tail(s.log, lines)}" for name, s in self.procs.items()
        )

    def close(self) -> None:
        """Stop every process started here (SuperNodes first) and Flower's helpers below them."""
        for started in reversed(list(self.procs.values())):
            pid = started.popen.pid
            below = descendants(pid)
            _stop_pid(pid, grace=10.0)
            started.popen.wait(timeout=5)
            for child in below:
                _stop_pid(child, grace=5.0)
