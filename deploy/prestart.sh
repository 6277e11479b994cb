#!/bin/sh
# Container entrypoint of every service: bring the database schema to head, then exec the command (uvicorn
# by default, see each Dockerfile's CMD), which replaces this shell as PID 1 and gets the signals.
#
# ALEMBIC_INI names the service's alembic.ini (set by its Dockerfile). Migrations run on every start;
# alembic does nothing when the schema is already at head. If they fail the container exits non-zero and
# `restart: unless-stopped` retries. To run a command without migrating:
#   docker compose run --rm --entrypoint "" <service> <command>
set -eu

echo "applying database migrations (alembic -c ${ALEMBIC_INI} upgrade head)" >&2
alembic -c "${ALEMBIC_INI}" upgrade head

exec "$@"
