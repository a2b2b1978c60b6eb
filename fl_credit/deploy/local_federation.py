"""A Flower federation on loopback: one SuperLink and one SuperNode per bank, as subprocesses.

Used by the deployment tests (``tests/e2e/test_deployment.py``) and the deployment benchmark
(``simulations/bench/deployment.py``). Every process is started here with its PID recorded and
its output, each line prefixed with the wall-clock time it was read, in ``logs/<name>.log``;
:meth:`LocalFederation.close` stops each of them by PID, together with the helper processes
Flower started under them.

Waiting is progress-based: a wait fails when nothing in the federation has made progress
for ``stall_seconds`` (no new log line; while a process starts, no CPU time used either),
not after a fixed total. A loaded machine slows a run down without stopping it; a hung run
stops logging. (CPU time alone is no sign of progress once the federation is up: idle
SuperNodes poll the SuperLink every 3 s.)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CONNECTION = "fl-credit-local"
STALL_SECONDS = 180.0
SAFETY_CAP_SECONDS = 3600.0


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


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """PIDs of every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat:
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cpu_ticks(pid: int) -> int:
    """User + system CPU ticks of ``pid`` and the children it reaped (0 when gone)."""
    stat = _proc_stat(pid)
    if not stat:
        return 0
    return sum(int(v) for v in stat[11:15])


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


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
    """A process this helper started, and the thread copying its output to its log."""

    name: str
    popen: subprocess.Popen
    log: Path
    pump: threading.Thread
    lines: list[tuple[float, str]] = field(default_factory=list)

    def count(self, text: str) -> int:
        """How many logged lines contain ``text``."""
        return sum(text in line for _, line in list(self.lines))


def _pump(stream, log: Path, lines: list[tuple[float, str]]) -> None:
    with log.open("w", encoding="utf-8", errors="replace") as out:
        for raw in iter(stream.readline, b""):
            now = time.time()
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            lines.append((now, line))
            out.write(f"{now:.3f} {line}\n")
            out.flush()
    stream.close()


class StalledError(TimeoutError):
    """Nothing in the federation made progress for the stall limit."""


class LocalFederation:
    """SuperLink, SuperNodes and the ``flwr`` CLI on loopback, all under one folder.

    Parameters
    ----------
    root : pathlib.Path
        Scratch folder: ``FLWR_HOME``, logs and the SuperLink's working directory.
    port : int
        The SuperLink's port (Fleet, Control and Runtime API share it in Flower 1.41).
    ca_cert : pathlib.Path, optional
        The CA certificate the SuperNodes and the CLI verify the SuperLink with (``None``:
        insecure).
    stall_seconds : float
        How long the whole federation may show no progress before a wait fails.
    """

    def __init__(
        self,
        root: Path,
        port: int,
        ca_cert: Path | None,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.root = root
        self.port = port
        self.ca_cert = ca_cert
        self.stall_seconds = stall_seconds
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
        lines = [
            f'[superlink]\ndefault = "{CONNECTION}"\n',
            f"[superlink.{CONNECTION}]",
            f'address = "{self.address}"',
        ]
        if self.ca_cert is not None:
            lines.append(f'root-certificates = "{self.ca_cert}"')
        else:
            lines.append("insecure = true")
        (self.home / "config.toml").write_text("\n".join(lines) + "\n")

    def start(
        self, name: str, command: Sequence[str], extra_env: dict[str, str] | None = None
    ) -> Started:
        """Start ``command`` (a Flower executable, or ``python ...``) logging to
        ``logs/<name>.log``."""
        log = self.logs / f"{name}.log"
        head = command[0]
        argv = [sys.executable, *command[1:]] if head == "python" else [str(BIN / head)]
        if head != "python":
            argv += list(command[1:])
        popen = subprocess.Popen(
            argv,
            cwd=self.root,
            env={**self.env(), **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        lines: list[tuple[float, str]] = []
        pump = threading.Thread(target=_pump, args=(popen.stdout, log, lines), daemon=True)
        pump.start()
        self.procs[name] = Started(name, popen, log, pump, lines)
        return self.procs[name]

    def start_bank(self, name: str, supernode: Sequence[str], *, warm: bool = True) -> None:
        """Start a bank's SuperNode from its printed command: with ``warm``, as
        ``python -m fl_credit.supernode`` (warm ClientApps, prompt polling), else Flower's
        ``flower-supernode`` with the same arguments."""
        arguments = list(supernode[3:] if supernode[0] == "python" else supernode[1:])
        if warm:
            command = ["python", "-m", "fl_credit.supernode", *arguments]
            self.start(name, command, extra_env={"PYTHONPATH": str(PACKAGE_ROOT)})
        else:
            self.start(name, ["flower-supernode", *arguments])

    # --- progress-based waiting --------------------------------------------------------------

    def progress(self, cpu_of: str | None = None) -> tuple[int, int]:
        """A value that changes whenever the federation logs a line, or (``cpu_of``) the
        named process or one of its descendants uses CPU time."""
        lines = sum(len(p.lines) for p in self.procs.values())
        ticks = 0
        if cpu_of is not None:
            pid = self.procs[cpu_of].popen.pid
            ticks = cpu_ticks(pid) + sum(cpu_ticks(c) for c in descendants(pid))
        return lines, ticks

    def wait_until(
        self,
        done: Callable[[], bool],
        what: str,
        poll: float = 0.5,
        cpu_of: str | None = None,
    ) -> None:
        """Block until ``done()``; raise :class:`StalledError` after ``stall_seconds`` without
        progress (see :meth:`progress`), or after a one-hour safety cap."""
        started = last_change = time.monotonic()
        last = self.progress(cpu_of)
        while not done():
            now = time.monotonic()
            current = self.progress(cpu_of)
            if current != last:
                last, last_change = current, now
            if now - last_change > self.stall_seconds:
                raise StalledError(f"{what}: no progress for {self.stall_seconds:.0f}s")
            if now - started > SAFETY_CAP_SECONDS:
                raise StalledError(f"{what}: still waiting after {SAFETY_CAP_SECONDS:.0f}s")
            time.sleep(poll)

    def wait_for_port(self) -> None:
        """Block until the SuperLink accepts TCP connections."""

        def open_port() -> bool:
            self.check_alive("superlink")
            with socket.socket() as probe:
                probe.settimeout(1.0)
                return probe.connect_ex(("127.0.0.1", self.port)) == 0

        self.wait_until(open_port, f"SuperLink port {self.port}", poll=0.2, cpu_of="superlink")

    def wait_for_line(self, name: str, text: str, count: int = 1) -> float:
        """Block until ``text`` appears ``count`` times in process ``name``'s output; return
        the time (``time.time()``) it was read."""

        def seen() -> bool:
            if self.procs[name].count(text) >= count:
                return True
            self.check_alive(name)
            return False

        self.wait_until(seen, f"{name} logging {text!r} x{count}", poll=0.1, cpu_of=name)
        return [t for t, line in self.procs[name].lines if text in line][count - 1]

    def check_alive(self, name: str) -> None:
        """Raise if process ``name`` has exited."""
        code = self.procs[name].popen.poll()
        if code is not None:
            self.procs[name].pump.join(timeout=5)
            raise RuntimeError(f"{name} exited with code {code}:\n{tail(self.procs[name].log)}")

    # --- the flwr CLI -------------------------------------------------------------------------

    def flwr(self, *args: str, timeout: float = 600.0) -> subprocess.CompletedProcess:
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
            output, _ = popen.communicate(timeout=600)
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

    def wait_finished(self, run_id: int, poll: float = 2.0) -> dict:
        """Poll ``flwr list`` until the run's status starts with ``finished`` (progress-based:
        fails only when the federation stalls)."""
        status: dict = {}

        def finished() -> bool:
            self.check_alive("superlink")
            status.update(self.run_status(run_id))
            return str(status["status"]).startswith("finished")

        self.wait_until(finished, f"run {run_id}", poll=poll)
        return status

    def run_log(self, run_id: int) -> str:
        """The run's ServerApp log (``flwr log --show``)."""
        return self.flwr("log", str(run_id), CONNECTION, "--show").stdout

    # --- stopping -----------------------------------------------------------------------------

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to process ``name`` and wait for it to exit."""
        popen = self.procs[name].popen
        popen.send_signal(sig)
        popen.wait(timeout=60)

    def report(self, lines: int = 40) -> str:
        """The tail of every log, for a failing test."""
        return "\n".join(
            f"----- {name} ({s.log}) -----\n{tail(s.log, lines)}" for name, s in self.procs.items()
        )

    def close(self) -> None:
        """Stop every process started here (last started first) and Flower's helpers below
        them."""
        for started in reversed(list(self.procs.values())):
            pid = started.popen.pid
            below = descendants(pid)
            _stop_pid(pid, grace=10.0)
            try:
                started.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for child in below:
                _stop_pid(child, grace=5.0)
            started.pump.join(timeout=5)


# --- a whole deployment from one data set ------------------------------------------------------


@dataclass
class Deployment:
    """A running federation and the files it was built from."""

    fed: LocalFederation
    export: object
    bank_files: list[Path]
    run_config: Path
    output_dir: Path


def start_deployment(
    root: Path,
    overrides: Sequence[str],
    num_banks: int,
    *,
    warm: bool = True,
    wait_warm: bool = False,
    stall_seconds: float = STALL_SECONDS,
    floors: dict[str, object] | None = None,
) -> Deployment:
    """Export the banks, make certificates, start a SuperLink with TLS and SuperNode
    authentication and one SuperNode per bank, and wait until every bank is connected.

    The commands are the ones ``python -m fl_credit.export_banks --certs`` prints; with
    ``warm``, each bank runs ``python -m fl_credit.supernode`` with the same arguments, and
    ``wait_warm`` also waits for its warm SuperExec to have imported the dependencies (else a
    run submitted at once overlaps those imports with its ServerApp's start). ``floors``
    updates the banks' floors (``--node-config`` entries of :mod:`fl_credit.bank.floors`).
    """
    from fl_credit.deploy.certs import write_node_keys, write_tls
    from fl_credit.deploy.export_banks import (
        ExportOptions,
        export,
        superlink_command,
        supernode_command,
    )

    certs = root / "certs"
    tls = write_tls(certs)
    keys = {f"bank_{i}": write_node_keys(certs, f"supernode_{i}") for i in range(num_banks)}
    port = free_port_block(1)
    first_node_port = free_port_block(num_banks)
    while first_node_port <= port < first_node_port + num_banks:
        first_node_port = free_port_block(num_banks)
    options = ExportOptions(
        out=root / "banks",
        overrides=tuple(overrides),
        superlink=f"127.0.0.1:{port}",
        certs=certs,
        first_port=first_node_port,
    )
    result = export(options)
    fed = LocalFederation(root / "flower", port, tls.ca_cert, stall_seconds=stall_seconds)
    try:
        fed.start("superlink", superlink_command(options))
        fed.wait_for_port()
        fed.register({name: k.public_key for name, k in keys.items()})
        bank_files = list(result.bank_files.values())
        for i, path in enumerate(bank_files):
            command = supernode_command(options, i, path, floors=floors)
            fed.start_bank(f"bank_{i}", command, warm=warm)
        for i in range(num_banks):
            fed.wait_for_line(f"bank_{i}", "SuperNode ID:")
            if warm and wait_warm:
                fed.wait_for_line(f"bank_{i}", "dependencies imported")
    except BaseException:
        print(fed.report())
        fed.close()
        raise
    return Deployment(
        fed=fed,
        export=options,
        bank_files=bank_files,
        run_config=result.run_config,
        output_dir=options.out / "server_run",
    )
