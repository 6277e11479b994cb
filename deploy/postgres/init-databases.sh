#!/bin/bash
# Creates one database per CRM service, owned by $POSTGRES_USER.
#
# The postgres image runs /docker-entrypoint-initdb.d/* once, on the first start with an empty data volume
# (it executes a *.sh file when executable and sources it otherwise: the subshell keeps `set` local either way).
# Idempotent, so after adding a service below it can be re-run on a live database:
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/10-init-databases.sh
(
    set -euo pipefail

    databases=(customer_api complaint_api recommend_api)

    for db in "${databases[@]}"; do
        if [[ ! "$db" =~ ^[a-z_][a-z0-9_]*$ ]]; then
            echo "init-databases: invalid database name '$db'" >&2
            exit 1
        fi
        echo "init-databases: ensuring database $db" >&2
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
            -v db="$db" -v owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
    done
)
