"""Other processes, as far as the kit needs to know them: whether one is still there, and
whether it is still the one that was started (a pid can be given to a new process once
the first has ended; its start time tells them apart); and helpers that end with the
process that started them."""

from __future__ import annotations

import os
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user's counts; a zombie, ended
    and not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) != "Z"


def end_with_parent(parent: int, poll: float = 1.0) -> None:
    """End this process (a helper that the process ``parent`` started) once that parent
    is gone, however it ended (SIGKILL included), even before this call: a thread watches
    for the process being handed to another parent."""
    import threading

    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    threading.Thread(target=watch, name="cvatkit-parent-watch", daemon=True).start()


def _state(pid: int) -> str | None:
    """The process's state letter in ``/proc/PID/stat`` (R, S, Z, ...), if readable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[0] if fields else None


def start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since the machine booted (Linux's
    ``/proc/PID/stat``); None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name (field 2) is in parentheses and may hold spaces: count after its end.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None


def command_line(pid: int) -> list[str] | None:
    """The process's command line (None where it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def same_process(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that was recorded with start time
    ``started`` (when that is not known: whether the pid exists at all)."""
    if not pid_alive(pid):
        return False
    now = start_time(pid)
    return started is None or now is None or now == started
