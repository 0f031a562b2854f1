"""Errors a person fixes in the job file or the environment: the CLI prints them as one line, not a traceback.

They live here, below both lvm_data.storage and lvm_data.sources, so that storage can raise one without
importing the sources (lvm_data/cli/jobs.py lists the ones it prints, as USER_ERRORS).
"""


class SourceError(ValueError):
    """A source that cannot be planned or opened; the message names the source, the path and the fix."""
