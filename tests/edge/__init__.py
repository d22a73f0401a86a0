"""Tests of iotmon_edge: config, encoding, the agent against a real mosquitto."""
