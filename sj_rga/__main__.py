"""``python -m sj_rga``: the same command as ``sj-rga`` (and the entry point for ``torchrun -m sj_rga``)."""
import sys

from .cli import main

sys.exit(main())
