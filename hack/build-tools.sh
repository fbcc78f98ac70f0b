#!/usr/bin/env bash
# Builds the pinned control-plane binaries (etcd, kube-apiserver, kubectl) and helm
# from the Go module proxy into a cache directory outside the repository, once per
# pinned version. Prints the directory holding the binaries.
#
#   hack/build-tools.sh [control-plane|helm|all]
#
# OVERSEER_CACHE_DIR overrides the cache root (default: ~/.cache/overseer).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
source "$here/versions.env"
what=${1:-all}
cache=${OVERSEER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
bin="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin"
log() { echo "build-tools: $*" >&2; }

# go install refuses modules with replace directives, and both k8s.io/kubernetes and
# etcd's server module have them. So each is built from a throwaway module of our
# own that requires the release and pins its staging/sibling modules to released
# versions, generated from the release's own go.mod.
staging_replaces() {
  local gomod=$1 minor=$2
  # "k8s.io/api => ./staging/src/k8s.io/api"  ->  "k8s.io/api => k8s.io/api v0.36.3"
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\1#p' "$gomod" |
    while read -r mod; do echo "replace $mod => $mod $minor"; done
}

build_control_plane() {
  if [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" && -x "$bin/kubectl" &&
        -x "$bin/etcd" ]]; then return; fi
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN

  local k8s_mod; k8s_mod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  mkdir -p "$work/k8s"
  {
    echo "module overseer.local/k8sbins"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    staging_replaces "$k8s_mod" "$staging_version"
  } >"$work/k8s/go.mod"
  cat >"$work/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving k8s.io/kubernetes $KUBERNETES_VERSION (staging $staging_version)"
  (cd "$work/k8s" && go mod tidy -e >/dev/null 2>&1 || true; cd "$work/k8s" && go mod tidy)
  # Without these ldflags /version reports v0.0.0 and kubectl warns about skew.
  local pkg=k8s.io/client-go/pkg/version base=k8s.io/component-base/version
  local ld="-s -w"
  for p in $pkg $base; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1"
    ld+=" -X $p.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $p.gitTreeState=clean"
  done
  # The controller-manager runs garbage collection (a graph's Jobs go with it) and
  # namespace deletion, which the tests rely on to clean up.
  log "building kube-apiserver, kube-controller-manager and kubectl (minutes the first time)"
  (cd "$work/k8s" && CGO_ENABLED=0 go build -tags tools -trimpath -ldflags "$ld" \
    -o "$bin/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl)

  [[ -x "$bin/etcd" ]] && return
  local etcd_mod; etcd_mod=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  mkdir -p "$work/etcd"
  {
    echo "module overseer.local/etcdbin"
    echo "go 1.26"
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    # "go.etcd.io/etcd/api/v3 => ../api" -> pinned to the same release.
    sed -n 's#^\s*\(go.etcd.io/etcd/[a-z0-9/]*\) => \.\./.*$#\1#p' "$etcd_mod" |
      while read -r mod; do echo "replace $mod => $mod $ETCD_VERSION"; done
  } >"$work/etcd/go.mod"
  cat >"$work/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  log "building etcd $ETCD_VERSION"
  (cd "$work/etcd" && go mod tidy && CGO_ENABLED=0 go build -tags tools -trimpath \
    -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

build_helm() {
  if [[ -x "$bin/helm" ]]; then return; fi
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building helm $HELM_VERSION"
  local major=${HELM_VERSION%%.*}
  (cd "$work" && GOBIN="$bin" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/$major/cmd/helm@$HELM_VERSION")
}

case "$what" in
  control-plane) build_control_plane ;;
  helm) build_helm ;;
  all) build_control_plane; build_helm ;;
  *) echo "usage: $0 [control-plane|helm|all]" >&2; exit 2 ;;
esac
echo "$bin"
