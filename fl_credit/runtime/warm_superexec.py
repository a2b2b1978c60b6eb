"""A bank's SuperExec that starts each ClientApp from a warm process.

Flower 1.41 starts a fresh ``flwr-clientapp`` process for every message a SuperNode receives
(there is no option to keep one alive; its warm executor pools exist only for Kubernetes and
for AgentApp, Model and Connector tasks), and each of those processes imports Flower's client
runtime, torch, pandas and the app again, seconds per message.

This command is Flower's ``flower-superexec`` (same arguments) after importing those
dependencies once; every ClientApp task is then forked from it and runs Flower's own
``run_clientapp`` (see ``fl_credit.runtime.flower_patches``, ``fork_clientapps``). The app's code
still comes from the run's FAB, and every message still runs in its own process.

Run it next to a SuperNode started with ``--isolation process`` (the SuperNode then does not
start a SuperExec of its own), pointing at the SuperNode's Runtime API port::

    flower-supernode --isolation process --port 9094 [the usual SuperNode arguments]
    python -m fl_credit.runtime.warm_superexec --insecure --runtime-api-address 127.0.0.1:9094 \\
        [--parent-pid <SuperNode PID>]

``--insecure`` refers to the loopback Runtime API between the two processes (as the
SuperNode's own SuperExec uses it); the SuperNode's connection to the SuperLink keeps its TLS
and authentication.
"""

from __future__ import annotations

import importlib
import time

# Third-party modules the ClientApp imports (never fl_credit itself: the app's code must come
# from the run's FAB): what a fresh process would spend seconds importing.
PRELOAD = (
    "flwr.supernode.runtime.run_clientapp",
    "flwr.supercore.tls",
    "numpy",
    "pandas",
    "scipy.special",
    "torch",
    "torch.nn",
    "cryptography.hazmat.primitives.asymmetric.x25519",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.kdf.hkdf",
)


def preload(modules: tuple[str, ...] = PRELOAD) -> float:
    """Import ``modules`` (missing ones are skipped); return the seconds it took."""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    return time.perf_counter() - started


def main() -> None:
    """``flower-superexec`` with warm, forked ClientApps."""
    from flwr.supercore.cli.flower_superexec import flower_superexec

    from fl_credit.runtime.flower_patches import apply_patches

    seconds = preload()
    print(f"fl-credit warm SuperExec: dependencies imported in {seconds:.2f}s", flush=True)
    with apply_patches("superexec"):
        flower_superexec()


if __name__ == "__main__":
    main()
