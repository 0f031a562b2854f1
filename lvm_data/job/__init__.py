"""Running a job: its config, its plan, the streaming executor that processes work units, and progress.

    config.py    the job file as frozen dataclasses (load_job, config_hash)
    plan.py      read units, write units (buckets for grouping templates), WorkUnit, resume checks
    runs.py      open a run against its output (RunContext: what every worker needs), finish it (manifest)
    steps.py     the per-item work as plain functions: read_items, prepare, tokenize, finish_unit
    executor.py  UnitExecutor: units end to end in one process, decode / encode / write overlapping
    decoding.py  the decode pool (decoder processes or threads)
    encoder.py   batches across units, one model per device
    staging.py   token-space dedup units waiting for the pool's decision
    loop.py      the plain in-process loop (the benchmarks' reference)
    progress.py  the dry-run report and the progress display

Beam is not imported here: pipelines/tokenize.py distributes work units and hands them to the executor.
"""
