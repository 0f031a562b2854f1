"""The flags Beam knows, so that a command passing its other arguments to Beam can refuse a typo.

Beam itself keeps an argument it cannot parse and only logs it ("Discarding unparseable args"), so
`lvm-data run job.yaml --dryrun` would start a real job. `unknown_arguments` parses the arguments the way
Beam's PipelineOptions does (every options class's flags, no abbreviations) and returns what is left;
`closest` names the flag that was probably meant, the command's own first.
"""

from __future__ import annotations

import argparse
import difflib
import functools

from apache_beam.options import pipeline_options


@functools.cache
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    for options in _subclasses(pipeline_options.PipelineOptions):
        try:
            options._add_argparse_args(parser)
        except argparse.ArgumentError:  # a flag two options classes both declare: the first one stands
            continue
    return parser


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return sorted(set(found), key=lambda c: (c.__module__, c.__qualname__))


def beam_flags() -> list[str]:
    return sorted(flag for flag in _parser()._option_string_actions if flag.startswith("--"))


def unknown_arguments(args: list[str]) -> list[str]:
    """The arguments Beam's options do not take (flags it does not know, and stray words)."""
    _known, unknown = _parser().parse_known_args(list(args))
    return unknown


def closest(argument: str, ours: list[str]) -> str | None:
    """The flag probably meant by `argument` (`--dryrun` -> `--dry-run`): the command's own, else Beam's."""
    flag = argument.split("=", 1)[0]
    for candidates in (ours, beam_flags()):
        match = difflib.get_close_matches(flag, candidates, n=1, cutoff=0.75)
        if match:
            return match[0]
    return None
