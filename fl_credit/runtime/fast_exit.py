"""End a finished command without the interpreter's teardown.

Tearing down an interpreter that imported torch (and Flower, Ray, pandas) frees every module
one by one and runs the C++ static destructors, for nothing, since the process is about to
exit. :func:`without_teardown` wraps a
command's ``main()``: when it returns (or raises ``SystemExit``) it does what the interpreter
does first at exit (the threading module's exit callbacks, then waiting for non-daemon
threads), runs the ``atexit`` handlers (Ray's shutdown, logging's flush and close, temporary
folders), flushes stdout and stderr and leaves with ``os._exit`` and the same exit code. Any
other exception propagates unchanged, with the normal traceback and teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn


def exit_code(err: SystemExit) -> int:
    """The status ``sys.exit`` would give for ``err`` (printing a message code as it does)."""
    code = err.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


INTERRUPTED = 130
"""Exit code of a command stopped by Ctrl-C: it leaves without waiting for worker threads
(the in-process engine's banks would go on training)."""


def exit_now(code: int = 0) -> NoReturn:
    """Run the atexit handlers, flush the standard streams and leave with ``code``; wait for
    non-daemon threads first unless the command was interrupted (``INTERRUPTED``)."""
    if code != INTERRUPTED and threading.current_thread() is threading.main_thread():
        # What the interpreter does first at exit: the threading module's exit callbacks
        # (executors waking their idle workers), then joining non-daemon threads.
        threading._shutdown()
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def without_teardown() -> Iterator[None]:
    """Leave through :func:`exit_now` once the block ends or raises ``SystemExit``."""
    try:
        yield
    except SystemExit as err:
        exit_now(exit_code(err))
    exit_now(0)
