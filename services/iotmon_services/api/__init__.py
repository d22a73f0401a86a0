"""The iotmon HTTP API: devices, latest readings, time series and dead letters (FastAPI)."""

from iotmon_services.api.app import create_app
from iotmon_services.api.config import Settings
from iotmon_services.api.server import ApiServer

__all__ = ["ApiServer", "Settings", "create_app"]
