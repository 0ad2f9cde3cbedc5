"""`theramind serve`: check the bind, build the counselor, run the API and console on uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

from theramind.signals import SIGNAL
from theramind.web.security import ServeOptions, check_bind

log = logging.getLogger(__name__)


def serve(options: ServeOptions, config: Path | None = None, runs_dir: Path | None = None) -> None:
    """Serve the HTTP API and the console until interrupted.

    The bind is checked before anything loads, so a refused configuration fails at once.

    Raises:
        ConfigError: a non-loopback host without a token, or a bad config file.
    """
    check_bind(options)
    import uvicorn

    from theramind.api import TheraMind
    from theramind.web.app import create_app

    mind = TheraMind.from_config(config)
    try:
        app = create_app(mind, options, runs_dir)
        host = f"[{options.host}]" if ":" in options.host else options.host
        log.info(
            "TheraMind console: http://%s:%d/  (records in %s)",
            host,
            options.port,
            mind.settings.home,
            extra=SIGNAL,
        )
        uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
    finally:
        mind.close()
