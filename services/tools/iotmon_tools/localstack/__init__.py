"""Run real mosquitto, influxd and Prometheus on loopback ports: for the demo, benchmarks
and tests."""

from iotmon_tools.localstack.embedded_broker import EmbeddedBroker
from iotmon_tools.localstack.influxd import InfluxdProcess
from iotmon_tools.localstack.mosquitto import BrokerSecurity, MosquittoProcess, find_dynsec_plugin
from iotmon_tools.localstack.processes import ManagedProcess, find_program, free_port
from iotmon_tools.localstack.prometheus import PrometheusError, PrometheusProcess
from iotmon_tools.localstack.webhook_receiver import ReceivedWebhook, WebhookReceiver

__all__ = [
    "BrokerSecurity",
    "EmbeddedBroker",
    "InfluxdProcess",
    "ManagedProcess",
    "MosquittoProcess",
    "PrometheusError",
    "PrometheusProcess",
    "ReceivedWebhook",
    "WebhookReceiver",
    "find_dynsec_plugin",
    "find_program",
    "free_port",
]
