"""``python -m sip_agent call|answer|register ...``: the SIP agent's command line (see ``cli.py``)."""

import sys

from sip_agent.sip.cli import main

sys.exit(main())
