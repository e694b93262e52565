"""Cover traffic on a real user node and relay: on and off from the CLI, loops come back.

(That the choice outlives a restart is checked on the store, in dchat-messaging's tests.)"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import httpx
import pytest
from typer.testing import CliRunner

from dchat_node.cli import app
from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess

pytestmark = pytest.mark.slow
runner = CliRunner()


def _dchat(node: NodeProcess, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    reply: dict[str, object] = json.loads(result.output)
    return reply


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_cover_goes_out_loops_come_back_and_off_stops_it(
    make_user: Callable[[str], NodeProcess],
) -> None:
    carol = make_user("carol")
    with carol.client() as client:
        client.create_identity("carol")
        off = client.status()["cover"]
        assert (off["on"], off["loops_sent"]) == (False, 0)  # off by default
        on = _dchat(carol, "privacy", "cover", "on", "--budget", "8000")  # ~12 envelopes/s
        assert (on["on"], on["budget"], on["source"]) == (True, 8000, "set")

        def back() -> bool:
            cover = client.cover_traffic()
            return int(cover["loops_returned"]) >= 3 and int(cover["drops_sent"]) >= 3

        _until(back)
        cover = client.status()["cover"]
        assert cover["failed"] == 0  # the relay stored every drop and loop
        assert cover["loop_rtt_ms"] is not None
        assert cover["loop_rtt_ms"] < 5000
        token = {"Authorization": f"Bearer {carol.info['token']}"}
        with httpx.Client(base_url=carol.info["url"], timeout=10) as http:
            metrics = http.get("/metrics", headers=token).text
        assert "\ndchat_cover_loops_returned_total " in metrics
        with pytest.raises(ApiError) as small:
            client.set_cover_traffic(True, budget=2)  # not one envelope a minute
        assert small.value.status == 400
        assert _dchat(carol, "privacy", "cover", "off")["on"] is False
        sent = client.cover_traffic()["loops_sent"]
        time.sleep(1.0)
        assert client.cover_traffic()["loops_sent"] == sent
        assert client.cover_traffic()["loops_missing"] == 0
