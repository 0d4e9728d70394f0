import sys

from differential.cli import main

sys.exit(main())
