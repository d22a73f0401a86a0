"""The ``iotmon`` command line."""
