"""``python -m orchestration.cli``: how tests and child processes run the CLI.

The sidecar supervisor and the Kafka benchmark start services this way with the
running interpreter, so they need no installed ``marketlake`` script.
"""

from orchestration.cli import app

app()
