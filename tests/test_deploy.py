"""deploy/: the systemd units pass `systemd-analyze verify`, and the HAProxy configuration HAProxy's check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parent.parent / "deploy"
UNITS = sorted(p.name for p in (DEPLOY / "systemd").iterdir())


def test_the_units_are_the_ones_documented():
    assert UNITS == ["searchsvc-haproxy.service", "searchsvc-publish.service", "searchsvc-publish.timer",
                     "searchsvc-replica.service"]


@pytest.mark.parametrize("unit", UNITS)
def test_each_unit_passes_systemd_analyze_verify(unit, tmp_path):
    # The units name the installed searchsvc; here, the one under test.
    searchsvc = Path(sys.executable).parent / "searchsvc"
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/srv/searchsvc/.venv/bin/searchsvc", str(searchsvc)),
                                     encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
                          capture_output=True, text=True, timeout=60)
    # An unknown key is only a warning (exit status 0): nothing may be said at all.
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_the_haproxy_configuration_passes_haproxys_check():
    env = {**os.environ, "SEARCHSVC_LISTEN": "127.0.0.1:8080", "SEARCHSVC_REPLICA1": "127.0.0.1:8001",
           "SEARCHSVC_REPLICA2": "127.0.0.1:8002", "SEARCHSVC_RATE_10S": "50"}
    done = subprocess.run(["haproxy", "-dW", "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "Configuration file is valid"), done.stderr
