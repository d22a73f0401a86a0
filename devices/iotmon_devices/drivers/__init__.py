"""Drivers for real hardware: sensors, meters and school-bus readers, each with a simulated twin.

Configs (``*_config`` modules) import no hardware library, so an agent's YAML is
checked anywhere; a driver module imports its library (``iotmon-devices[hardware]``)
when the registry builds one.
"""
