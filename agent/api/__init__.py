"""The station's management API (docs/api.md): FastAPI, served by the daemon.

``create_app(station)`` builds the application; ``serve_api(station, daemon)`` serves it
with uvicorn on a thread of the daemon when ``[api] enabled``; ``ApiServer`` is that server.
"""

from agent.api.app import create_app
from agent.api.server import ApiServer, ApiStartError, serve_api

__all__ = ["ApiServer", "ApiStartError", "create_app", "serve_api"]
