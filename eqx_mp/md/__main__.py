"""``python -m eqx_mp.md`` (see :func:`eqx_mp.md.main`)."""

from ._cli import main

raise SystemExit(main())
