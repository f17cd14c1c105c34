"""``python -m repro`` (and ``torchrun -m repro``) runs the command line."""

from repro.cli import main

main()
