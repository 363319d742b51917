"""Apache Superset from PyPI in a virtual environment of its own, run as a local process
(gunicorn): dashboards on the lake, its metadata in the stack's PostgreSQL."""
