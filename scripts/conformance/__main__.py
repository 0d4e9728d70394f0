import os
import sys

from conformance.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:
    # Output piped into e.g. `head`: stop quietly.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    status = 1
sys.exit(status)
