"""``python -m crosscheck`` is the ``crosscheck`` command."""

import sys

from ._cli import main

sys.exit(main())
