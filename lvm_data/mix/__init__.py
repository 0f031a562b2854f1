"""Mixing job outputs into training shards: the mix file, the plan, the shards (pipelines/mix.py runs it)."""
