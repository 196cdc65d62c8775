#!/usr/bin/env python3
"""Entry point: python run.py [serve|migrate|create-user|create-app] (SPEC §1.3)."""

import sys

from backend.cli import main

if __name__ == "__main__":
    sys.exit(main())
