"""iotmon tools: the ``iotmon`` CLI, the local stack, the demo and the benchmarks.

Nothing here runs in production images: each service has its own distribution.
"""
