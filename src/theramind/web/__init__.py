"""HTTP access to TheraMind: a JSON API with streamed replies, and a console page over it."""

from theramind.web.app import create_app
from theramind.web.security import ServeOptions, check_bind

__all__ = ["ServeOptions", "check_bind", "create_app"]
