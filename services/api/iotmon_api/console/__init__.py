"""The operator console: a browser page served by the API (``/console``) and the few
routes it needs beyond the public API (``/api/v1/console/…``): a live alert stream
(server-sent events), bus views and camera events. Everything else it shows comes from
the public routes (devices, acknowledge, silences), under the same scoped token."""
