#!/usr/bin/env bash
# Runs the sales example end to end on a local control plane: starts etcd and
# kube-apiserver on 127.0.0.1, installs the CRDs, starts the operator and two runners,
# applies examples/sales/graph.yaml, waits for it, and prints what kubectl shows.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$repo"

state=$(mktemp -d "${TMPDIR:-/tmp}/overseer-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

echo "==> starting a local control plane (the first run builds it, which takes a while)"
python -m overseer.devcluster run --controller-manager --state-dir "$state" >"$state/devcluster.out" 2>"$state/devcluster.log" &
pids+=($!)
for _ in $(seq 1800); do
  [[ -f "$state/ready" ]] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$state/devcluster.log" >&2; exit 1; }
  sleep 1
done
[[ -f "$state/ready" ]] || { echo "control plane did not become ready" >&2; exit 1; }
export KUBECONFIG="$state/kubeconfig"
export PATH="$(python -m overseer.devcluster bin-dir):$PATH"

echo "==> installing the CRDs"
kubectl apply --server-side -f crds/ >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/jobgraphs.overseer.dev crd/jobs.overseer.dev >/dev/null
kubectl create namespace demo >/dev/null

echo "==> starting the operator and two runners (logs in $state)"
export OVERSEER_LOG_FORMAT=json
python -m controller --namespace demo 2>"$state/operator.log" &
pids+=($!)
for i in 1 2; do
  python -m runner --handlers examples.sales.handlers --namespace demo 2>"$state/runner-$i.log" &
  pids+=($!)
done

echo "==> kubectl apply -f examples/sales/graph.yaml"
kubectl apply -n demo -f examples/sales/graph.yaml
kubectl wait -n demo --for=condition=Complete --timeout=120s jobgraph/sales

echo "==> kubectl get overseer -n demo"
kubectl get overseer -n demo
echo
echo "==> the report job's result"
kubectl get ojob -n demo sales-report -o jsonpath='{.status.result}' | python -m json.tool
