"""``python -m largesc_codec.evaluation``: see ``cli.py``."""

import sys

from largesc_codec.evaluation.cli import main

sys.exit(main())
