# One image for every werkbrug service; docker-compose.yml chooses the service with its command
# (`python -m services.<name>`), so the image sets no CMD of its own.
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 werkbrug \
 && useradd --system --uid 10001 --gid werkbrug --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin werkbrug

WORKDIR /src

# The runtime dependencies first, in their own layer, so that a change to the code does not
# reinstall them. Only [project].dependencies: no extras, so no dev or embedded-database packages.
COPY pyproject.toml ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', *deps])"

# Then the application itself (the packages shared*, services*, infra* and cli*), and no sources are left
# behind: the services run from site-packages.
COPY shared ./shared
COPY services ./services
COPY infra ./infra
COPY cli ./cli
RUN pip install --no-cache-dir . \
 && cd / && rm -rf /src

WORKDIR /app
USER 10001:10001
