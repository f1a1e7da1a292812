#!/usr/bin/env python3
"""Thin entry point for a source checkout: the app lives in edgedino.apps.classify (installed as edgedino-classify)."""

import sys

from edgedino.apps.classify import main

if __name__ == "__main__":
    sys.exit(main())
