"""`python -m lvm_data.cli`: the same as `lvm-data`."""

from lvm_data.cli.commands import main

main()
