#!/usr/bin/env python3
"""Thin entry point for a source checkout: the app lives in edgedino.apps.features (installed as edgedino-features)."""

import sys

from edgedino.apps.features import main

if __name__ == "__main__":
    sys.exit(main())
