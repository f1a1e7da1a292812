#!/usr/bin/env python3
"""Thin entry point for a source checkout: the app lives in edgedino.apps.segment (installed as edgedino-segment)."""

import sys

from edgedino.apps.segment import main

if __name__ == "__main__":
    sys.exit(main())
