#!/usr/bin/env bash
# Runs the whole test suite. With no KUBECONFIG set, the tests start their own control
# plane (etcd and kube-apiserver on 127.0.0.1), building the pinned binaries the first
# time. Extra arguments go to pytest, e.g. hack/test.sh -k chain -x
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$repo"
# Build (or find) the control plane before pytest starts, so the first build's progress
# is shown instead of hidden behind a session fixture.
if [[ -z "${KUBECONFIG:-}" && -z "${KUBEBUILDER_ASSETS:-}" ]]; then
  hack/build-tools.sh all >/dev/null
fi
exec python -m pytest "$@"
