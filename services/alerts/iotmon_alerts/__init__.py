"""Alerts that reach people: stream rules, alert lifecycle, signed webhooks, school-bus safety."""
