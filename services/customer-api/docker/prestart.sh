#!/bin/sh
# customer-api container entrypoint: bring the database schema to head, then exec the command
# (uvicorn by default, see the Dockerfile's CMD), which replaces this shell as PID 1 and gets the signals.
#
# Migrations run on every start; alembic does nothing when the schema is already at head. If they fail the
# container exits non-zero and `restart: unless-stopped` retries. To run a command without migrating:
#   docker compose run --rm --entrypoint "" customer-api <command>
set -eu

echo "customer-api: applying database migrations (alembic upgrade head)" >&2
alembic -c /app/services/customer-api/alembic.ini upgrade head

exec "$@"
