"""`behavior-lab serve ckpt=hold port=0` composes its config, binds loopback and speaks the protocol."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from behavior_lab.data import schema

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:connect\\(\\) must be used:DeprecationWarning"),
]


def test_serve_command_hold_policy(tmp_path):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    proc = subprocess.Popen(
        [sys.executable, "-m", "behavior_lab.cli.main", "serve", "ckpt=hold", "port=0", f"out={tmp_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port, lines, deadline = None, [], time.time() + 90
        while port is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"serving ws://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
        assert port, "server did not report its port:\n" + "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200
        client = WebsocketClientPolicy(host="127.0.0.1", port=port)
        assert client.get_server_metadata()["ckpt"] == "hold"
        p = np.zeros(256, np.float32)
        p[schema.PROPRIO_INDICES["arm_left_qpos"]] = 0.3
        p[schema.PROPRIO_INDICES["gripper_left_qpos"]] = 0.05
        p[schema.PROPRIO_INDICES["gripper_right_qpos"]] = 0.05
        obs = {schema.PROPRIO_KEY: p, schema.TASK_ID_KEY: np.array([5], np.int64)}
        for k in schema.OBS_RGB_KEYS:
            obs[k] = np.zeros((16, 16, 4), np.uint8)
        action = client.infer(obs)["action"]
        assert action.dtype == np.float32 and action.shape == (23,)
        np.testing.assert_allclose(action[7:14], 0.3, atol=1e-6)  # hold policy: arm stays where it is
    finally:
        proc.terminate()
        proc.wait(10)
