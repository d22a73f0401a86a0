"""``python -m iotmon_edge``: same as the ``iotmon-edge`` command."""

from iotmon_edge.cli import run

run()
