# podioc container image: the framework, its dependencies, and the IOC
# directories under iocs/ (iocs/NAME is copied to /iocs/NAME).
#
#   podioc build iocs/demo --tag podioc:dev      # offline: wheels made on the host
#   docker build -t podioc:dev .                 # pip reaches a package index itself
#   docker run --rm --network host podioc:dev run /iocs/demo/demo.yaml
#
# The container runs as uid/gid 10001 and needs no writable root filesystem:
# it writes only to /tmp and /var/lib/podioc/autosave (both volumes), so
# `docker run --read-only` works. The HEALTHCHECK probes the IOC named by
# PODIOC_PREFIX; `podioc up` and the Kubernetes manifests set it.
#
# Build arguments: BASE_IMAGE (any image with python3 >= 3.11 and its venv
# module: python:3.12-slim, or a Debian bookworm with python3-venv),
# PIP_NO_INDEX=1 to install from wheels/ only, and the OCI label values
# VERSION, REVISION, SOURCE and DESCRIPTION.

ARG BASE_IMAGE=python:3.12-slim

# ---- build: a virtual environment at /opt/podioc ----------------------------
FROM ${BASE_IMAGE} AS build
ARG PIP_NO_INDEX=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INDEX=${PIP_NO_INDEX} \
    PIP_FIND_LINKS=/wheels \
    PIP_ROOT_USER_ACTION=ignore
# wheels/ is optional (the wildcard keeps COPY from failing without it); the
# README.md that comes along is harmless there.
COPY README.md wheel[s] /wheels/
# The Dockerfile rides along: the wheel ships it as package data for `podioc build`.
COPY pyproject.toml README.md Dockerfile /src/
COPY framework/ /src/framework/
RUN python3 -m venv /opt/podioc \
    && /opt/podioc/bin/pip install --no-cache-dir /src \
    && /opt/podioc/bin/podioc --version
# The IOCs come last so that changing one reuses the layers above. Each may
# bring a requirements.txt (its wheels go into wheels/ for offline builds).
# pip leaves afterwards: nothing installs at run time (16 MB saved).
COPY iocs/ /iocs/
RUN for req in /iocs/*/requirements.txt; do \
      if [ -f "$req" ]; then /opt/podioc/bin/pip install --no-cache-dir -r "$req" || exit 1; fi; \
    done \
    && /opt/podioc/bin/python -m compileall -q /iocs \
    && /opt/podioc/bin/python -m pip uninstall --yes --quiet pip

# ---- runtime: no compilers, no build tools, non-root -------------------------
FROM ${BASE_IMAGE}
ARG BASE_IMAGE
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG SOURCE=""
ARG DESCRIPTION="podioc: Python EPICS soft IOCs served over Channel Access and PVAccess"
LABEL org.opencontainers.image.title="podioc" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENV PATH=/opt/podioc/bin:${PATH} \
    HOME=/tmp \
    LOGNAME=podioc \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PODIOC_AUTOSAVE_DIR=/var/lib/podioc/autosave
COPY --from=build /opt/podioc /opt/podioc
COPY --from=build /iocs /iocs
# A named account for uid 10001 (getpass and friends look it up); LOGNAME
# covers any other uid a cluster may impose (runAsUser).
RUN groupadd --gid 10001 podioc \
    && useradd --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin podioc \
    && mkdir -p /var/lib/podioc/autosave \
    && chown -R 10001:10001 /var/lib/podioc \
    && chmod 0750 /var/lib/podioc/autosave
VOLUME ["/tmp", "/var/lib/podioc/autosave"]
WORKDIR /iocs
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["podioc", "probe", "--timeout", "5"]
ENTRYPOINT ["podioc"]
CMD ["run"]
