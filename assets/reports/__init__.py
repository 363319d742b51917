"""Reports: the EOD settlement report of a day and its checks."""
