"""Simulated devices: deterministic, pattern-following stand-ins for real sensors."""
