"""Tests of iotmon_devices: drivers, registry, simulators."""
