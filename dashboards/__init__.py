"""What people look at: the EOD settlement report (HTML with its plots); the Superset
bundle and the live trading screen join it here."""
