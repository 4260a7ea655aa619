"""``python -m sj_rga.cli``: the same command as ``sj-rga``."""
import sys

from . import main

sys.exit(main())
