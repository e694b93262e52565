"""``examples/echo_bot.py`` runs: from the workspace, and from wheels in a clean virtualenv.

The bot is a separate process embedding its user node; a second user (a node
process) sends it a message through a relay and must get the same text back.
The wheel test builds the workspace's wheels, pip-installs
``dchat-sdk[embedded]`` into a virtualenv outside the repository (the local
wheels plus the machine's configured package index) and runs the same bot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dchat_sdk import NodeUnreachableError, RemoteClient

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ECHO_BOT = REPO / "examples" / "echo_bot.py"
PASSPHRASE = "echo bot passphrase"


def _bot_api(bot_dir: Path, bot: subprocess.Popen[bytes], timeout: float) -> RemoteClient:
    """The bot's node API, once its embedded node has written ``api.json``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bot.poll() is None, bot.communicate()[1].decode()[-2000:]
        try:
            client = RemoteClient.from_data_dir(bot_dir)
            client.health()
            return client
        except NodeUnreachableError:
            time.sleep(0.2)
    raise AssertionError("the echo bot's node did not start")


def echo_round_trip(
    python: str, script: Path, cwd: Path, relay: NodeProcess, bob: NodeProcess
) -> None:
    """Start the bot with ``python script``; bob's message to it comes back."""
    bot_dir = cwd / "bot"
    env = {**os.environ, "DCHAT_PASSPHRASE": PASSPHRASE}
    command = [python, str(script), str(bot_dir), relay.info["link"]]
    bot = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE)
    try:
        with _bot_api(bot_dir, bot, 60) as api, bob.client() as b:
            api.create_identity("echo")
            b.create_identity("bob")
            b.add_contact("echo", api.card())
            b.send("echo", "ping 1")
            deadline = time.monotonic() + 30
            while [(m.direction, m.text) for m in b.messages("echo")] != [
                ("out", "ping 1"),
                ("in", "ping 1"),
            ]:
                assert time.monotonic() < deadline, b.messages("echo")
                time.sleep(0.2)
    finally:
        bot.kill()
        bot.communicate()


def test_the_echo_bot_answers(
    tmp_path: Path, relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    echo_round_trip(sys.executable, ECHO_BOT, tmp_path, relay, make_user("bob"))


def test_the_echo_bot_runs_from_wheels_in_a_clean_virtualenv(
    tmp_path: Path, relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv not found (it builds the wheels)")
    assert REPO not in tmp_path.parents, "the virtualenv must be outside the repository"
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    started = time.monotonic()
    build = [uv, "build", "--all-packages", "--wheel", "--out-dir", str(wheels)]
    subprocess.run(build, cwd=REPO, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    install = [*pip, "--find-links", str(wheels), "dchat-sdk[embedded]"]
    done = subprocess.run(install, capture_output=True, timeout=900, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    script = tmp_path / "echo_bot.py"
    shutil.copy(ECHO_BOT, script)
    echo_round_trip(str(venv / "bin" / "python"), script, tmp_path, relay, make_user("bob"))
    # Measured on the 2-core dev machine under load: about 130 s, most of it pip.
    print(f"wheels, virtualenv, install and echo: {time.monotonic() - started:.1f} s")
