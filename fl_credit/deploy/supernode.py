"""A bank's SuperNode with warm ClientApps and prompt polling: ``flower-supernode``, faster.

Takes exactly ``flower-supernode``'s arguments (``--superlink``, ``--root-certificates``,
``--auth-supernode-private-key``, ``--port``, ``--node-config``, ...) and runs Flower's own
SuperNode with two changes, both measured in ``simulations/bench/deployment.py``:

- **warm ClientApps**: the SuperNode runs in ``--isolation process`` and this command starts,
  as its child, ``python -m fl_credit.runtime.warm_superexec`` on the SuperNode's Runtime API port;
  each message's ClientApp is forked from that process, which imported Flower's client
  runtime, torch and pandas once, instead of a fresh ``flwr-clientapp`` importing them every
  time (seconds per message);
- **prompt polling**: Flower 1.41 hard-codes two sleeps in the SuperNode (3 s before asking
  the SuperLink again when it had no message, 0.5 s between looks for the ClientApp's reply);
  they become ``--poll-interval`` (default 0.2 s) and 0.05 s. Each idle ask is one HTTPS
  request to the SuperLink: 5 per second per bank at 0.2 s. Raise it for large federations.

Everything else (TLS, SuperNode authentication, the node config, heartbeats) is Flower's.
``--stock`` runs Flower's SuperNode unchanged (``flower-supernode``), for comparison.

Usage::

    python -m fl_credit.supernode [--poll-interval 0.2] [--stock] <flower-supernode arguments>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class _Parser(argparse.ArgumentParser):
    """Errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def split_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This command's own options, and the ``flower-supernode`` arguments."""
    parser = _Parser(add_help=False)
    parser.add_argument("--poll-interval", type=float, default=0.2)
    parser.add_argument("--stock", action="store_true")
    ours, rest = parser.parse_known_args(argv)
    if not 0.01 <= ours.poll_interval <= 60:
        parser.error("--poll-interval must be between 0.01 and 60 seconds")
    return ours, rest


def runtime_api_address(args: list[str]) -> str:
    """Where the SuperNode serves its Runtime API (``--host`` / ``--port``, Flower's
    defaults otherwise)."""
    from flwr.supercore.constant import SUPERNODE_UVICORN_DEFAULT_PORT, UVICORN_DEFAULT_HOST

    def value(flag: str, default: str) -> str:
        for i, arg in enumerate(args):
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return default

    host = value("--host", UVICORN_DEFAULT_HOST)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    port = value("--port", str(SUPERNODE_UVICORN_DEFAULT_PORT))
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def start_warm_superexec(address: str) -> subprocess.Popen:
    """``fl_credit.runtime.warm_superexec`` for this SuperNode (it exits when this process does)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
    )
    command = [
        sys.executable,
        "-m",
        "fl_credit.runtime.warm_superexec",
        "--insecure",
        "--runtime-api-address",
        address,
        "--parent-pid",
        str(os.getpid()),
    ]
    return subprocess.Popen(command, env=env)


def main(argv: list[str] | None = None) -> None:
    """Run the SuperNode (see the module docstring)."""
    ours, rest = split_args(list(sys.argv[1:] if argv is None else argv))
    from flwr.supernode.cli.flower_supernode import flower_supernode

    if ours.stock:
        sys.argv = ["flower-supernode", *rest]
        flower_supernode()
        return
    if "--isolation" in rest:
        print("error: fl_credit.supernode sets --isolation itself", file=sys.stderr)
        raise SystemExit(2)
    from fl_credit.runtime.flower_patches import apply_patches

    start_warm_superexec(runtime_api_address(rest))
    sys.argv = ["flower-supernode", *rest, "--isolation", "process"]
    with apply_patches("supernode", idle_poll_seconds=ours.poll_interval):
        flower_supernode()


if __name__ == "__main__":
    main()
