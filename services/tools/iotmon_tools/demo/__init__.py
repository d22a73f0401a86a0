"""``iotmon demo``: the whole local pipeline in one process tree."""

from iotmon_tools.demo.options import DemoOptions
from iotmon_tools.demo.stack import DemoStack

__all__ = ["DemoOptions", "DemoStack"]
