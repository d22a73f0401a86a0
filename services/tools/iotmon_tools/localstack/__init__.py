"""Run real mosquitto and influxd on loopback ports: for the demo, benchmarks and tests."""

from iotmon_tools.localstack.embedded_broker import EmbeddedBroker
from iotmon_tools.localstack.influxd import InfluxdProcess
from iotmon_tools.localstack.mosquitto import MosquittoProcess
from iotmon_tools.localstack.processes import ManagedProcess, find_program, free_port

__all__ = [
    "EmbeddedBroker",
    "InfluxdProcess",
    "ManagedProcess",
    "MosquittoProcess",
    "find_program",
    "free_port",
]
