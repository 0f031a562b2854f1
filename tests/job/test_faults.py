import errno

import pytest

from lvm_data.job.executor import UnitFailed
from lvm_data.job.faults import StorageFault, describe, find_fault

WORKER_TEXT = """Traceback (most recent call last):
  File "/lvm_data/shards/writer.py", line 132, in write_parquet_atomic
    fs.create_dir(folder, recursive=True)
NotADirectoryError: [Errno 20] Cannot create directory '/o/ledger/source=a'. Detail: [errno 20] Not a directory

The above exception was the direct cause of the following exception:

lvm_data.job.executor.UnitFailed: unit a/000000 was not committed: NotADirectoryError: [Errno 20] Cannot create \
directory '/o/ledger/source=a'. Detail: [errno 20] Not a directory [while running 'ProcessUnits']
"""


def chained(error: BaseException) -> BaseException:
    """What the embedded runner raises: the executor's UnitFailed, its cause the storage error."""
    try:
        try:
            raise error
        except BaseException as cause:
            raise UnitFailed(f"unit a/000000 was not committed: {cause} [while running 'ProcessUnits']") from cause
    except UnitFailed as err:
        return err


def test_a_fault_is_found_in_the_cause_chain():
    fault = find_fault(chained(OSError(errno.ENOSPC, "No space left on device", "/o/sentences/x.parquet")))
    assert fault == StorageFault("OSError", errno.ENOSPC, "No space left on device", "/o/sentences/x.parquet")
    assert fault.code == "ENOSPC"


def test_a_fault_is_found_in_a_workers_traceback_text():
    fault = find_fault(RuntimeError(WORKER_TEXT))
    assert (fault.kind, fault.errno, fault.path) == ("NotADirectoryError", errno.ENOTDIR, "/o/ledger/source=a")
    assert fault.text == "Cannot create directory '/o/ledger/source=a'. Detail: [errno 20] Not a directory"
    escaped = find_fault(RuntimeError(WORKER_TEXT.replace("\n", "\\n")))  # as a worker's log line carries it
    assert (escaped.kind, escaped.errno) == ("NotADirectoryError", errno.ENOTDIR)


def test_other_errors_are_no_fault():
    assert find_fault(chained(KeyError("inputs"))) is None
    assert find_fault(RuntimeError("ValueError: bad value")) is None


@pytest.mark.parametrize(
    ("error", "said", "advice"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/o/x"),
            "[Errno 28] No space left on device (ENOSPC) at /o/x",
            "free space on the disk that holds /o",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/o/x"),
            "[Errno 13] Permission denied (EACCES) at /o/x",
            "make /o writable for this user",
        ),
        (OSError(errno.EROFS, "Read-only file system"), "[Errno 30] Read-only file system (EROFS)", "make /o writable"),
        (OSError(errno.EIO, "Input/output error"), "[Errno 5] Input/output error (EIO)", "check the disk or mount"),
        (
            OSError("google::cloud::Status(UNAVAILABLE: Retry policy exhausted)"),
            "OSError: google::cloud::Status(UNAVAILABLE: Retry policy exhausted)",
            "kept failing (after its own retries)",
        ),
        (
            OSError("google::cloud::Status(PERMISSION_DENIED: caller lacks storage.objects.create)"),
            "PERMISSION_DENIED",
            "check the credentials and their permissions on /o",
        ),
    ],
)
def test_one_line_names_the_output_the_errno_and_what_to_do(error, said, advice):
    line = describe(find_fault(error), "/o")
    assert line.startswith("writing the job output /o failed: ") and said in line and advice in line
    assert line.endswith(
        "then run the same command again: committed units are kept and the rest is redone (nothing partial is visible)"
    )
    assert "\n" not in line


def test_a_fault_elsewhere_names_its_path_and_the_output():
    line = describe(find_fault(PermissionError(errno.EACCES, "Permission denied", "/data/in/x.jpg")), "/o")
    assert line.startswith(
        "a storage error stopped the job (output /o): [Errno 13] Permission denied (EACCES) at "
        "/data/in/x.jpg; make /data/in/x.jpg readable for this user"
    )


def test_gs_paths_without_their_scheme_are_inside_the_output():
    fault = find_fault(OSError(errno.ENOSPC, "full", "bucket/out/sentences/x"))
    assert describe(fault, "gs://bucket/out").startswith("writing the job output gs://bucket/out failed")


def test_a_relative_output_holds_the_absolute_path_of_its_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fault = find_fault(OSError(errno.ENOSPC, "full", str(tmp_path / "out" / "manifest.json")))
    assert describe(fault, "out").startswith("writing the job output out failed")
