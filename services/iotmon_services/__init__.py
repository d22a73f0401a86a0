"""iotmon cloud-side services: ingest, API, storage adapters, local stack and CLI."""
