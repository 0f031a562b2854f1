"""In-flight progress files: written when the snapshot changes, read back per unit, removed on close."""

from lvm_data.job.heartbeat import Heartbeat, read_in_flight, remove_run_folder, run_folder
from lvm_data.storage import list_files


def test_an_executor_writes_its_units_in_flight_and_removes_its_file_on_close(tmp_path):
    out, units = str(tmp_path), {"s/u0": {"items": 3, "images": 2}}
    beat = Heartbeat(out, "run1", lambda: dict(units), interval=3600)
    beat.beat()
    assert read_in_flight(out, "run1") == units and read_in_flight(out, "other") == {}
    units["s/u1"] = {"items": 1, "images": 0}
    beat.beat()
    assert read_in_flight(out, "run1") == units
    beat.close()
    assert list_files(run_folder(out, "run1")) == []


def test_two_processes_files_are_merged_and_the_driver_removes_the_folder(tmp_path):
    out = str(tmp_path)
    first = Heartbeat(out, "r", lambda: {"s/a": {"items": 1, "images": 1}}, interval=3600)
    second = Heartbeat(out, "r", lambda: {"s/b": {"items": 2, "images": 2}}, interval=3600)
    first.beat()
    second.beat()
    (tmp_path / "progress" / "run=r" / "torn.json").write_text("{not json")  # another version, or torn: skipped
    assert read_in_flight(out, "r") == {"s/a": {"items": 1, "images": 1}, "s/b": {"items": 2, "images": 2}}
    remove_run_folder(out, "r")
    assert read_in_flight(out, "r") == {}


def test_a_failed_write_never_fails_the_job(tmp_path, monkeypatch):
    from lvm_data.job import heartbeat

    def broken(uri, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(heartbeat.storage, "write_bytes", broken)
    beat = Heartbeat(str(tmp_path), "r", lambda: {"s/a": {"items": 1, "images": 0}}, interval=3600)
    beat.beat()  # logged at debug level, not raised
    beat.close()
