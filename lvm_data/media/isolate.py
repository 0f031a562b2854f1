"""Run a risky function (a media decoder) in a separate, spawn-started process with a timeout.

A decoder that segfaults or aborts kills only its worker process: the call raises
`ItemError(decoder_crash)` and the next call starts a fresh worker. A decoder that hangs past its
timeout is killed: the call raises `ItemError(timeout)`. Either way the caller (a Beam worker) lives
on and the item becomes a ledger row. Exceptions raised inside the function travel back and are
re-raised in the caller as `ItemError`: its own reason kept, any other exception `decode_error`; a
MemoryError as a MemoryError, which the caller words as it does its own (lvm_data.media.decode: out_of_memory).

Workers are fresh interpreters (`python -c`, like the spawn start method: never fork, because OpenCV
and fork deadlock; and unlike multiprocessing's spawn, the parent's __main__ is never re-run) and
are reused between calls: one per calling thread, created on first use (`worker_for_thread`). The
function and its arguments must be picklable: a function defined at module top level, plain data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from lvm_data.outcomes import ItemError, Reason

START_TIMEOUT_S = 60.0  # a cold worker imports numpy/decord/av; a busy 2-core box can take a while
MAX_CALLS = 1000  # calls before the worker is replaced


class WorkerStartError(ItemError):
    """The worker process could not start: the machine's problem, not the item's (callers may treat it apart)."""


class IsolatedWorker:
    """One child process that runs calls one at a time. Not thread-safe: use one per thread."""

    def __init__(self, start_timeout_s: float = START_TIMEOUT_S, max_calls: int = MAX_CALLS, nice: int = 0):
        """`nice`: the child's scheduling priority is lowered by this much (background work)."""
        self._nice = nice
        self._process: subprocess.Popen | None = None
        self._conn: _Duplex | None = None
        self._start_timeout_s = start_timeout_s
        self._max_calls = max_calls
        self._calls = 0

    def call(self, fn: Callable, *args: Any, timeout_s: float, name: str = "") -> Any:
        """fn(*args) in the worker. Raises ItemError(timeout | decoder_crash) or fn's own exception."""
        if self._calls >= self._max_calls:  # a fresh process now and then: native decoders may leak
            self.close()
        self._ensure_started()
        conn = self._conn
        assert conn is not None  # _ensure_started sets it with the process
        self._calls += 1
        label = name or getattr(fn, "__name__", "call")
        try:
            conn.send((fn, args))
        except (BrokenPipeError, OSError) as err:
            self._discard()
            raise ItemError(Reason.DECODER_CRASH, f"{label}: decoder process was gone: {err}") from err
        if not conn.poll(timeout_s):
            self._discard()
            raise ItemError(Reason.TIMEOUT, f"{label}: decoder did not finish in {timeout_s:g} s and was killed")
        try:
            ok, value = conn.recv()
        except (EOFError, OSError):
            code = self._exitcode()
            self._discard()
            raise ItemError(Reason.DECODER_CRASH, f"{label}: decoder process died ({describe_exit(code)})") from None
        if ok:
            return value
        raise _rebuild(value)

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self._discard(grace_s=1.0)

    @property
    def used(self) -> bool:
        """Whether the running process has served calls before (its native libraries may carry state)."""
        return self._process is not None and self._process.poll() is None and self._calls > 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._discard()
        self._calls = 0
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = f"from lvm_data.media.isolate import _serve_fds; _serve_fds({to_child_r}, {from_child_w}, {self._nice})"
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=_child_env(),
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._process = process
        self._conn = _Duplex(Connection(from_child_r, writable=False), Connection(to_child_w, readable=False))
        self._conn.send(list(sys.path))
        if not self._conn.poll(self._start_timeout_s):
            self._discard()
            raise WorkerStartError(Reason.TIMEOUT, f"decoder process did not start in {self._start_timeout_s:g} s")
        try:
            self._conn.recv()  # the worker's "ready"
        except (EOFError, OSError):
            code = self._exitcode()
            self._discard()
            hint = "run `python -c 'import lvm_data.media.isolate'` to see why"
            raise WorkerStartError(
                Reason.DECODER_CRASH, f"decoder process failed to start ({describe_exit(code)}); {hint}"
            ) from None

    def _exitcode(self) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            return None

    def _discard(self, grace_s: float = 0.0) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)

    def __enter__(self) -> IsolatedWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def describe_exit(code: int | None) -> str:
    """'killed by SIGSEGV' for a negative exit code, 'exit code N' otherwise."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Duplex:
    """A reading and a writing Connection over two pipes, used as one."""

    def __init__(self, reader: Connection, writer: Connection):
        self._reader, self._writer = reader, writer

    def send(self, obj: Any) -> None:
        self._writer.send(obj)

    def recv(self) -> Any:
        return self._reader.recv()

    def poll(self, timeout: float) -> bool:
        return self._reader.poll(timeout)

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def _child_env() -> dict[str, str]:
    """The parent's environment, single-threaded numeric libraries (one decode per worker), and lvm_data
    importable even when the parent found it through its own sys.path rather than an installation."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def _serve_fds(read_fd: int, write_fd: int, nice: int = 0) -> None:
    """Entry point of the worker process (started as `python -c`, so no parent __main__ is re-run)."""
    if nice:
        os.nice(nice)
    conn = _Duplex(Connection(read_fd, writable=False), Connection(write_fd, readable=False))
    sys.path[:] = conn.recv()  # the parent's import path: functions it sends must import here too
    _serve(conn)


def _serve(conn: _Duplex) -> None:
    """Worker loop: receive (fn, args), send (True, result) or (False, failure). None stops it."""
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        fn, args = request
        try:
            conn.send((True, fn(*args)))
        except Exception as err:  # noqa: BLE001 - every failure travels back as a value
            conn.send((False, _portable(err)))


MEMORY_ERROR = "MemoryError"  # not a reason code: a MemoryError travels back as one


def _portable(err: Exception) -> tuple[str, str]:
    """(reason code, detail) of a failure inside the worker; exceptions other than ItemError are decode errors,
    but a MemoryError stays one (MEMORY_ERROR)."""
    if isinstance(err, ItemError):
        return err.reason.value, err.detail
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename != __file__]
    where = frames[-1] if frames else None
    place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    if isinstance(err, MemoryError):
        return MEMORY_ERROR, f"MemoryError in the decoder process{place}" + (f": {err}" if str(err) else "")
    return Reason.DECODE_ERROR.value, f"{type(err).__name__}: {err}{place}"


def _rebuild(failure: tuple[str, str]) -> ItemError | MemoryError:
    reason, detail = failure
    return MemoryError(detail) if reason == MEMORY_ERROR else ItemError(Reason(reason), detail)


class _ThreadWorkers(threading.local):
    worker: IsolatedWorker | None = None


_workers = _ThreadWorkers()


def worker_for_thread() -> IsolatedWorker:
    """The calling thread's worker, started on first use and restarted after a crash or timeout.

    This is the one piece of process state in lvm_data.media: a pool of one child process per
    thread, so that a Beam worker does not pay a process start per video. Daemon processes: they
    end with the parent.
    """
    if _workers.worker is None:
        _workers.worker = IsolatedWorker()
    return _workers.worker
