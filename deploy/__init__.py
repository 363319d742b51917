"""Install, start, check and stop the stack's services as local processes, so the platform
runs on one machine without Docker; ``local_service.py`` is what every service shares."""
