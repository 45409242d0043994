"""``python -m largesc_codec.cli``: the ``largesc`` command."""

import sys

from largesc_codec.cli.app import main

sys.exit(main())
