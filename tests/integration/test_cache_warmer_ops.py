"""cache-warmer's shipped operations files: the alert rules pass `promtool check rules`
(Debian package prometheus) and use only metrics cache-warmer exports."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO

RULES = os.path.join(REPO, "charts", "cache-warmer", "files", "cache-warmer.rules.yml")
EXPORTED = {"rte_cache_warming_results_total", "rte_cache_warming_queue_size",
            "rte_batch_completion_duration_seconds_bucket",
            "rte_cache_warming_prediction_accuracy",
            # libcommon's, exported by every consumer; rte_service_info scopes the rule to us
            "rte_kafka_consumer_stuck_seconds", "rte_service_info"}


def test_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install the Debian package prometheus (make deps)")
    p = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 5 rules found" in p.stdout


def test_alert_rules_use_exported_metrics():
    with open(RULES) as f:
        text = f.read()
    used = set(re.findall(r"\b(rte_[a-z_]+)", text))
    assert used == EXPORTED, used
    for name in ("RTECacheWarmingFailureRateHigh", "RTECacheWarmingBatchBacklog",
                 "RTEPredictionAccuracyLow", "RTEKafkaConsumerStuck"):
        assert f"alert: {name}" in text
