"""The ``mutual`` command: one Typer app; each module of this package adds the commands of one capability.

Every command is a thin wrapper over ``mutual.app`` or a pure layer function; errors are one clear line.
"""

from mutual.cli import (
    alerts,  # noqa: F401  (shortage alerts)
    analytics,  # noqa: F401  (roll-ups, completeness)
    forecast,  # noqa: F401  (forecasts and the rolling-origin backtest)
    governance,  # noqa: F401  (partners, agreements, the audit log)
    main,  # noqa: F401  (the app and the submission commands)
    ops,  # noqa: F401  (config show, db upgrade|current)
    planning,  # noqa: F401  (mutual-aid plans and their workflow)
    web,  # noqa: F401  (serve, users and tokens)
)
from mutual.cli.main import app

__all__ = ["app"]
