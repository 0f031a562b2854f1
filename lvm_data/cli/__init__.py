"""The command layer, `lvm-data`: the only place that knows click, prints for people and sets exit codes.

    commands.py  the click commands: parse, build a config, call one function, print its result
    jobs.py      run, retry-failed, mix and export-mix: config and pipeline calls, user errors, exit codes
    sample.py    `lvm-data sample`: the bundled sample corpus end to end, as a new user's first command
    display.py   progress snapshots (lvm_data.progress) shown as a live bar or as log lines

It sits on the top floor (ARCHITECTURE.md): it may import pipelines/, benchmarks/ and every lvm_data package;
nothing imports it. Commands import their work inside the function so that `lvm-data --help` does not load
torch or Beam.
"""

from lvm_data.cli.commands import main

__all__ = ["main"]
