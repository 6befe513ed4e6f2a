"""Child processes that die with the local cloud, however it ends.

A local cloud killed with SIGKILL runs no cleanup: without this its Lambda execution
environments and training jobs would keep running as orphans. On Linux the kernel
sends each child SIGKILL when its parent exits (``PR_SET_PDEATHSIG``); elsewhere only
the local cloud's own shutdown ends them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
# loaded here, in the parent: between fork and exec only the prctl call itself may run
_LIBC = (
    ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if sys.platform.startswith("linux")
    else None
)


def die_with_parent() -> None:
    """``preexec_fn`` for Popen: SIGKILL this child when its parent exits."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def own_group_dying_with_parent() -> None:
    """``preexec_fn``: a process group of its own (so a stop ends its children too),
    and SIGKILL when the local cloud exits."""
    os.setsid()
    die_with_parent()
