# One image for every Panjereh process: the four services, the metrics worker and the
# one-shot `panjereh init`. docker-compose.yml picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first (cached unless pyproject.toml changes), then the code.
COPY pyproject.toml README.md* ./
RUN mkdir -p shared services infra simulator \
    && touch shared/__init__.py services/__init__.py infra/__init__.py simulator/__init__.py \
    && pip install . \
    && pip uninstall -y panjereh \
    && rm -rf shared services infra simulator build

COPY shared ./shared
COPY services ./services
COPY infra ./infra
COPY simulator ./simulator
# The agency package: the simulator acts through it, as agencies' systems do.
COPY clients ./clients
RUN pip install --no-deps . ./clients && rm -rf build clients/build

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin panjereh \
    && mkdir -p /var/lib/panjereh && chown panjereh /var/lib/panjereh
USER panjereh

ENV PANJEREH_ENVIRONMENT=production \
    PANJEREH_HTTP_HOST=0.0.0.0

CMD ["panjereh", "--help"]
