"""Run real mosquitto and influxd on loopback ports: for the demo, benchmarks and tests."""

from iotmon_services.localstack.embedded_broker import EmbeddedBroker
from iotmon_services.localstack.influxd import InfluxdProcess
from iotmon_services.localstack.mosquitto import MosquittoProcess
from iotmon_services.localstack.processes import ManagedProcess, find_program, free_port

__all__ = [
    "EmbeddedBroker",
    "InfluxdProcess",
    "ManagedProcess",
    "MosquittoProcess",
    "find_program",
    "free_port",
]
