#!/bin/sh
# Image build steps shared by every service's Dockerfile (run from /app, the repository layout):
#   install.sh deps SERVICE   third-party dependencies of crm-kit and the service (a cacheable layer)
#   install.sh app SERVICE    crm-kit and the service themselves, editable, then checks and compiles
# constraints.txt (pinned name==version lines) is used when present.
set -eu
step=$1
service=$2
set --
if [ -f constraints.txt ]; then set -- -c constraints.txt; fi

case "$step" in
deps)
    python - libs/crm-kit/pyproject.toml "services/$service/pyproject.toml" > /tmp/requirements.txt <<'PY'
import re
import sys
import tomllib

local = {"crm-kit", sys.argv[2].split("/")[1]}
for path in sys.argv[1:]:
    for dependency in tomllib.load(open(path, "rb"))["project"]["dependencies"]:
        name = re.split(r"[\s\[<>=!~;(@]", dependency, maxsplit=1)[0].lower().replace("_", "-")
        if name not in local:
            print(dependency)
PY
    pip install "$@" -r /tmp/requirements.txt
    rm /tmp/requirements.txt
    ;;
app)
    pip install "$@" -e libs/crm-kit -e "services/$service"
    pip check
    python -m compileall -q libs/crm-kit/src "services/$service/src" "services/$service/migrations"
    install -d -o crm -g crm -m 0750 /app/data
    ;;
*)
    echo "usage: install.sh deps|app SERVICE" >&2
    exit 2
    ;;
esac
