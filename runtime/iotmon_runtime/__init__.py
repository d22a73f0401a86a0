"""The shared runtime under every iotmon service and the edge agent.

``mqtt`` (the one MQTT client), ``settings`` (the one settings base), ``config_files``
(user YAML with errors that name file, key and line), ``log`` (structlog), ``workers``
(start/stop and a supervisor), ``cli`` and ``version`` (what every CLI shares).
"""
