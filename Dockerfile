# syntax=docker/dockerfile:1
# One Dockerfile, one target per service; each image carries its own distribution only:
#   docker build --target ingest .   iotmon-ingest (no web stack, no embedded broker)
#   docker build --target api .      iotmon-api
#   docker build --target alerts .   iotmon-alerts (rules, lifecycle, webhooks; no web stack)
#   docker build --target edge .     iotmon-edge (also the compose stack's simulators)
#   docker build --target homeassistant .   iotmon-homeassistant (opt-in bridge)
#   docker build --target video .    iotmon-video (OpenCV, onnxruntime; weights mounted, never
#                                    baked in)
#   docker build --target tools .    the iotmon CLI (broker identities, dashboards push, demo,
#                                    benchmarks)
# Versions are pinned by requirements/constraints.txt, what the test suite passed with.
# docker-compose.yml tags each image with its distribution's version (iotmon/ingest:0.2.0).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system iotmon \
    && useradd --system --gid iotmon --home-dir /app --no-create-home iotmon \
    && install -d -o iotmon -g iotmon /var/lib/iotmon /var/lib/iotmon-registry \
       /var/lib/iotmon-alerts

WORKDIR /app
COPY requirements/ requirements/
COPY contract/ contract/
COPY runtime/ runtime/


FROM base AS ingest
COPY services/storage/ services/storage/
COPY services/registry/ services/registry/
COPY services/ingest/ services/ingest/
RUN pip install -c requirements/constraints.txt \
    ./contract ./runtime ./services/storage ./services/registry ./services/ingest
# docker-compose.yml's entry point: each replica claims a slot (its instance id).
COPY deploy/ingest-slot.sh /usr/local/bin/iotmon-ingest-slot
USER iotmon
ENTRYPOINT ["iotmon-ingest"]
CMD ["run"]


FROM base AS api
COPY services/storage/ services/storage/
COPY services/registry/ services/registry/
COPY services/alerts/ services/alerts/
COPY services/api/ services/api/
RUN pip install -c requirements/constraints.txt \
    ./contract ./runtime ./services/storage ./services/registry ./services/alerts \
    ./services/api
USER iotmon
EXPOSE 8000
ENTRYPOINT ["iotmon-api"]
CMD ["run"]


FROM base AS alerts
COPY services/storage/ services/storage/
COPY services/registry/ services/registry/
COPY services/alerts/ services/alerts/
RUN pip install -c requirements/constraints.txt \
    ./contract ./runtime ./services/storage ./services/registry ./services/alerts
USER iotmon
ENTRYPOINT ["iotmon-alerts"]
CMD ["run"]


FROM base AS homeassistant
COPY services/registry/ services/registry/
COPY services/homeassistant/ services/homeassistant/
RUN pip install -c requirements/constraints.txt \
    ./contract ./runtime ./services/registry ./services/homeassistant
USER iotmon
ENTRYPOINT ["iotmon-homeassistant"]
CMD ["run"]


FROM base AS edge
COPY devices/ devices/
COPY edge/ edge/
RUN pip install -c requirements/constraints.txt ./contract ./runtime ./devices ./edge
USER iotmon
ENTRYPOINT ["iotmon-edge"]
CMD ["run"]


FROM base AS video
COPY services/video/ services/video/
RUN pip install -c requirements/constraints.txt ./contract ./runtime ./services/video \
    && install -d -o iotmon -g iotmon /var/lib/iotmon/media
# No weights in the image (licence, size, and this project never downloads them): mount
# the folder the cameras file names, e.g. /models.
ENV YOLO_OFFLINE=1
USER iotmon
EXPOSE 8090
ENTRYPOINT ["iotmon-video"]
CMD ["run"]


FROM base AS tools
COPY devices/ devices/
COPY edge/ edge/
COPY services/ services/
RUN pip install -c requirements/constraints.txt \
    ./contract ./runtime ./devices ./edge \
    ./services/storage ./services/registry ./services/alerts ./services/ingest ./services/api \
    ./services/homeassistant ./services/tools
# Dashboards for `iotmon dashboards push` (it looks in ./dashboards).
COPY dashboards/ dashboards/
USER iotmon
ENTRYPOINT ["iotmon"]
CMD ["--help"]
