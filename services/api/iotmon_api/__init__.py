"""The iotmon HTTP API: devices, latest readings, time series and dead letters (FastAPI)."""

from iotmon_api.app import create_app
from iotmon_api.config import Settings
from iotmon_api.server import ApiServer

__all__ = ["ApiServer", "Settings", "create_app"]
