import ctypes
import os
import time

import pytest

from lvm_data.media.isolate import IsolatedWorker, describe_exit
from lvm_data.outcomes import ItemError, Reason


@pytest.fixture
def worker():
    with IsolatedWorker() as w:
        yield w


def raise_item_error(detail):
    raise ItemError(Reason.TOO_SHORT, detail)


def test_results_come_back_and_the_worker_is_reused(worker):
    assert worker.call(pow, 2, 10, timeout_s=30) == 1024
    pid = worker.pid
    assert pid != os.getpid()
    assert worker.call(divmod, 7, 2, timeout_s=30) == (3, 1)
    assert worker.pid == pid


def test_abort_in_the_worker_is_a_decoder_crash_and_the_next_call_works(worker):
    worker.call(pow, 1, 1, timeout_s=30)
    first = worker.pid
    with pytest.raises(ItemError) as err:
        worker.call(os.abort, timeout_s=30, name="clip.mp4")
    assert err.value.reason is Reason.DECODER_CRASH
    assert "clip.mp4" in err.value.detail and "SIGABRT" in err.value.detail
    assert worker.call(pow, 3, 2, timeout_s=30) == 9
    assert worker.pid != first


def test_a_real_segfault_in_the_worker_is_a_decoder_crash(worker):
    with pytest.raises(ItemError) as err:
        worker.call(ctypes.string_at, 0, timeout_s=30)  # reads address 0: SIGSEGV
    assert err.value.reason is Reason.DECODER_CRASH and "SIGSEGV" in err.value.detail
    assert worker.call(pow, 2, 3, timeout_s=30) == 8


def test_a_hang_is_killed_at_the_timeout(worker):
    worker.call(pow, 1, 1, timeout_s=30)  # started: the timeout below measures the call only
    start = time.monotonic()
    with pytest.raises(ItemError) as err:
        worker.call(time.sleep, 60, timeout_s=0.5)
    assert err.value.reason is Reason.TIMEOUT
    assert time.monotonic() - start < 20
    assert worker.call(pow, 2, 2, timeout_s=30) == 4


def test_exceptions_travel_back_with_their_reason(worker):
    with pytest.raises(ItemError) as err:
        worker.call(raise_item_error, "only 3 frames", timeout_s=30)
    assert err.value.reason is Reason.TOO_SHORT and err.value.detail == "only 3 frames"
    with pytest.raises(ItemError) as err:
        worker.call(int, "not a number", timeout_s=30)
    assert err.value.reason is Reason.DECODE_ERROR and "ValueError" in err.value.detail


def test_describe_exit():
    assert describe_exit(-11) == "killed by SIGSEGV" and describe_exit(3) == "exit code 3"


def test_the_worker_is_replaced_after_max_calls():
    with IsolatedWorker(max_calls=2) as w:
        w.call(pow, 1, 1, timeout_s=30)
        first = w.pid
        w.call(pow, 1, 1, timeout_s=30)
        assert w.pid == first
        w.call(pow, 1, 1, timeout_s=30)
        assert w.pid != first


def run_out_of_memory():
    raise MemoryError("cannot allocate 40 GiB")


def test_a_memory_error_comes_back_as_one(worker):
    """Not a decode error: the caller words it (lvm_data.media.decode: out_of_memory)."""
    with pytest.raises(MemoryError, match=r"MemoryError in the decoder process at test_isolate.py:\d+: cannot "):
        worker.call(run_out_of_memory, timeout_s=30)
    assert worker.call(pow, 2, 5, timeout_s=30) == 32
