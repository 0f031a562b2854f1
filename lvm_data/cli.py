"""`lvm-data`: the command line. Commands only parse, build a config and call a function."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Images, videos and annotated datasets to VQGAN visual sentences in Parquet."""


@main.group()
def tokenizer() -> None:
    """Inspect VQGAN checkpoints."""


@main.group()
def bench() -> None:
    """Benchmarks that print throughput figures."""


if __name__ == "__main__":
    main()
