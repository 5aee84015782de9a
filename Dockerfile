# The Airflow image the Celery stack in docker-compose.yaml runs: the official image, the same Airflow and
# Python as requirements.txt, plus this project's pinned requirements and its `matomo-posthog` command.
# Build: docker compose build (or docker build -t matomo-posthog-airflow:latest .)
FROM apache/airflow:3.3.2-python3.11

# The official image refuses pip as root; it runs as the airflow user already.
USER airflow

# Naming the image's own Airflow version beside the requirements stops pip from replacing Airflow, and
# fails the build if requirements.txt pins another one (the documented way to extend the image).
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt

# The package itself, for the `matomo-posthog` command (the demo emulators, `transform` on a file). DAGs and
# tasks import the library from the mounted plugins/ instead: docker-compose.yaml puts it first on PYTHONPATH.
# setuptools writes build files beside the sources, hence the airflow owner.
COPY --chown=airflow:0 pyproject.toml README.md /opt/matomo-posthog/
COPY --chown=airflow:0 plugins/matomo_posthog /opt/matomo-posthog/plugins/matomo_posthog
RUN pip install --no-cache-dir --no-deps /opt/matomo-posthog
