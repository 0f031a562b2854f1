"""Parquet shards of visual sentences, their ledger, commit markers and the run manifest."""
