"""Scale-out on Airflow's CeleryExecutor: Redis, two workers, faults."""
