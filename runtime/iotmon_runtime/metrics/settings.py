"""Where a service without an HTTP server of its own serves ``/metrics``.

Nested in each such service's settings as ``metrics`` (``IOTMON_INGEST_METRICS__PORT``);
each service subclasses it to give its own default port (docs/metrics.md lists them).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsSettings(BaseModel):
    """The Prometheus endpoint: on by default, on loopback, so nothing is exposed unasked."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve Prometheus metrics on /metrics.")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the metrics server binds to; 0.0.0.0 in a container that "
        "Prometheus scrapes over the compose network.",
    )
    port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description="TCP port of /metrics; 0 picks a free one (tests). A port that is taken "
        "stops the service at start, naming this variable.",
    )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def offset(self, index: int) -> MetricsSettings:
        """The settings of worker ``index`` of a multi-process service: port + index
        (0 stays 0, a free port each)."""
        if self.port == 0 or index == 0:
            return self
        port = self.port + index
        if port > 65535:
            raise ValueError(f"metrics port {self.port} + worker {index} passes 65535")
        return self.model_copy(update={"port": port})
