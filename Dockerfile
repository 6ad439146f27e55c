# The gateway's image: `tender serve` and what it runs (git to clone pipelines, pip to build
# their dependencies), as a non-root user. Steps do not run in it: each runs in the image its
# pipeline's `container_config.language` names (any python:3.X-slim).
#
#   docker build -t registry.example.com/tender:0.1.0 .
#
# The Helm chart (helm/tender) runs it with a read-only root filesystem: the data dir
# (/var/lib/tender) and /tmp are volumes.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/tender
COPY pyproject.toml README.md ./
COPY compiler compiler
COPY gateway gateway
COPY templates templates
RUN /opt/tender/bin/pip install --no-compile '.[postgres]'

FROM python:${PYTHON_VERSION}-slim
# git (and ssh, for deploy keys) clones pipelines from repositories. Debian's own versions:
# pinning them would break the build at each point release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/*
# A numeric user, so that Kubernetes can check runAsNonRoot.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tender --no-create-home tender \
    && mkdir -p /var/lib/tender \
    && chown tender:tender /var/lib/tender
COPY --from=build /opt/tender /opt/tender
ENV PATH=/opt/tender/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TENDER_HOST=0.0.0.0 \
    TENDER_DATA_DIR=/var/lib/tender
USER 10001:10001
WORKDIR /var/lib/tender
EXPOSE 8080
ENTRYPOINT ["tender"]
CMD ["serve"]
