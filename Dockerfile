# Production image: the official Airflow image of the pinned version, plus this provider
# installed with the project's own constraints (the resolved, tested dependency set).
FROM apache/airflow:3.3.2-python3.11

# The image's pip refuses to run as root; everything below runs as the airflow user.
USER airflow
WORKDIR /opt/airflow/mlsecops

COPY --chown=airflow:root pyproject.toml README.md constraints.txt nlp-model.txt ./
COPY --chown=airflow:root mlsecops_provider ./mlsecops_provider
COPY --chown=airflow:root core ./core
COPY --chown=airflow:root operators ./operators
COPY --chown=airflow:root sensors ./sensors
COPY --chown=airflow:root plugins ./plugins
COPY --chown=airflow:root include ./include

# The spaCy model first, hash-checked; production may add en_core_web_lg the same way and set
# gates.pii_deidentification.nlp_model in its policy.
RUN pip install --no-cache-dir --require-hashes --no-deps -r nlp-model.txt \
    && pip install --no-cache-dir -c constraints.txt . \
    && pip check

# The example DAGs and their assets (policies, suites) in the image's folders.
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root include /opt/airflow/include

WORKDIR /opt/airflow
ENV MLSECOPS_HOME=/opt/airflow/mlsecops-home \
    GX_ANALYTICS_ENABLED=false
