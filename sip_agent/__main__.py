"""``python -m sip_agent call|answer|register ...``: the SIP agent's command line (see ``cli.py``)."""

import sys

from .cli import main

sys.exit(main())
