"""``python -m eqx_mp.train``: see :func:`eqx_mp.train.main`."""

import sys

from .cli import main

sys.exit(main())
