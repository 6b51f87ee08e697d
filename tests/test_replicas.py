"""Replicas on one host and behind a load balancer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from conftest import SAMPLE_POSTS, run_cli, running_server

GUNICORNC = Path(sys.executable).parent / "gunicornc"


def _master_pid(socket_path: Path) -> int:
    done = subprocess.run([str(GUNICORNC), "-s", str(socket_path), "-c", "show stats", "-j"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["pid"]


def _appears(path: Path, limit: float = 10) -> bool:
    deadline = time.monotonic() + limit
    while not path.is_socket() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.is_socket()


def test_servers_on_one_host_never_share_a_control_socket(tmp_path):
    index = tmp_path / "index"
    assert run_cli("ingest", "--index", str(index), str(SAMPLE_POSTS / "posts")).returncode == 0
    home, runtime = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    runtime.mkdir()
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    # By default none: gunicorn's own default is one path per user, which the second server took
    # over silently and the first to stop deleted under the other.
    with running_server(index, tmp_path / "a.log", env=env), running_server(index, tmp_path / "b.log", env=env):
        assert list(home.rglob("*.ctl")) == [] and list(runtime.iterdir()) == []
    # Given a path each, each server answers on its own, and stopping one leaves the other's.
    a, b = tmp_path / "a.ctl", tmp_path / "b.ctl"
    with ExitStack() as both:
        both.enter_context(running_server(index, tmp_path / "a2.log", env=env, args=("--control-socket", str(a))))
        with running_server(index, tmp_path / "b2.log", env=env, args=("--control-socket", str(b))):
            assert _appears(a) and _appears(b)  # bound by the master once its workers are up
            assert _master_pid(a) != _master_pid(b)
        assert not b.exists() and a.is_socket()
        _master_pid(a)
