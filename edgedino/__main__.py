import sys

from edgedino.cli import main

sys.exit(main())
