"""``iotmon demo``: the whole local pipeline in one process tree."""

from iotmon_services.demo.stack import DemoOptions, DemoStack

__all__ = ["DemoOptions", "DemoStack"]
