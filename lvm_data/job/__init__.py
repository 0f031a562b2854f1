"""Running a job: its config, its plan, the streaming executor that processes work units, and progress.

    jobfile.py   the job file's frozen dataclasses (JobConfig, SourceConfig)
    config.py    reading and checking a job file into them (load_job, config_hash); filters parsed once
    validate.py  checks of the output location and of template/format pairs
    plan.py      read units, write units (buckets for grouping templates), WorkUnit, resume checks
    runs.py      open a run against its output (RunContext: what every worker needs), finish it (manifest)
    steps.py     the per-item work as plain functions: read_items, prepare, tokenize, finish_unit
    executor.py  UnitExecutor: units end to end in one process, decode / encode / write overlapping
    decoding.py  the decode pool (decoder processes or threads)
    encoder.py   batches across units, one model per device
    staging.py   token-space dedup units waiting for the pool's decision
    dedup_index.py  the image dedup index over a run's plan (its inputs, candidates read and decoded, in-process)
    loop.py      the plain in-process loop (the benchmarks' reference)
    progress.py  the dry-run report and the progress display

Beam is not imported here: pipelines/tokenize.py distributes work units and hands them to the executor.
"""
