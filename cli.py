#!/usr/bin/env python
"""archspec command line: `python cli.py build specs/resnet50.yaml` (see `--help`)."""
import sys

from archspec.cli import main

if __name__ == "__main__":
    sys.exit(main())
