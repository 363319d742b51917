"""What people look at: the EOD settlement report (HTML with its plots) and Superset's
dashboards as code (the bundle in ``superset/``, deployed and exported by
``provisioning``); the live trading screen joins them here."""
