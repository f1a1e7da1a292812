#!/usr/bin/env python3
"""Thin entry point for a source checkout: the app lives in edgedino.apps.track (installed as edgedino-track)."""

import sys

from edgedino.apps.track import main

if __name__ == "__main__":
    sys.exit(main())
