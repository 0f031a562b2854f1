from lvm_data.outcomes import FILTER_REASONS, Reason, Status, status_of
from lvm_data.shards.schema import load_schema


def test_ledger_schema_lists_every_reason_code_in_enum_order():
    assert load_schema("ledger")["properties"]["reason"]["enum"] == [r.value for r in Reason]


def test_download_failed_is_a_failure_not_a_filter():
    assert Reason.DOWNLOAD_FAILED not in FILTER_REASONS and status_of(Reason.DOWNLOAD_FAILED) is Status.FAILED
