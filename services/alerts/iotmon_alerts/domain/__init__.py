"""The alert domain: pure logic, events in, decisions out, time injected."""
