"""deploy/grafana dashboards and deploy/prometheus alert rules against what nodes really export.

* Every metric name a dashboard panel or an alert rule queries must be one a
  node of some role exports (read from real scrapes of a user node, a relay
  and a running validator, with a backup recorded), so renaming a metric in
  ``api/_metrics.py`` without updating the dashboards and rules fails here.
* The dashboards are Grafana dashboard JSON: they load, round-trip, and every
  panel has a unique id, a grid position and Prometheus targets.
* ``promtool check rules`` accepts the rules and ``promtool test rules`` runs
  ``alerts_test.yml``, which must show every alert both quiet and firing.
  Skipped when promtool is absent (Debian's prometheus package brings it and
  ``.ci/run`` installs it); under ``CI=true`` a missing promtool is a failure.

The rule file is read with a small line reader rather than a YAML library
(none is a dependency): it relies on the file's own layout, one ``- alert:``
line per rule followed by its ``expr:`` (inline or a ``>-`` block).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from dchat_chain.lowlevel import NetPlan
from dchat_core import SystemClock
from dchat_crypto import KdfParams
from dchat_node._runtime import build_node
from dchat_node.api._app import create_app
from dchat_node.cli._testnet import init_testnet
from dchat_node.config import NodeConfig, load_config
from dchat_storage import AsyncStore, open_database
from dchat_storage.backup import BackupStatus, write_backup_status

from .test_metrics import TOKEN, scrape

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
PROMETHEUS = ROOT / "deploy" / "prometheus"
ROLES = ("user", "relay", "validator")
FROM_PROMETHEUS = {"up"}  # series Prometheus itself writes for each target
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def _names(text: str) -> set[str]:
    """Every series name an exposition can produce (families without samples included)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        names |= {sample.name for sample in family.samples}
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The union of the names a user node, a relay and a running validator export."""
    tmp = tmp_path_factory.mktemp("exported")
    names: set[str] = set()

    async def scrape_roles() -> None:
        for role in ("user", "relay"):
            data_dir = tmp / role
            data_dir.mkdir()
            write_backup_status(data_dir, BackupStatus(1.0, 2.0, 1))
            with open_database(data_dir / "node.db") as db:
                options: dict[str, Any] = {"relay": "127.0.0.1:1"} if role == "user" else {}
                config = NodeConfig.model_validate({"role": role, "data_dir": data_dir, **options})
                node = build_node(config, AsyncStore(db), SystemClock(), b"unused")
                names.update(_names((await scrape(create_app(node, TOKEN)))[1]))
        secret = b"dashboards validator"
        plan = NetPlan(validators=4, accounts=1)
        init_testnet(tmp / "net", plan, secret, kdf=KdfParams.TESTING, block_interval=0.05)
        home = tmp / "net" / "validator-0"
        with open_database(home / "node.db") as db:
            node = build_node(load_config(home), AsyncStore(db), SystemClock(), secret)
            async with trio.open_nursery() as nursery:
                await node.start(nursery, secret)
                names.update(_names((await scrape(create_app(node, TOKEN)))[1]))
                nursery.cancel_scope.cancel()

    trio.run(scrape_roles)
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, labels, keywords left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    grouping = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    expr = re.sub(grouping, "", expr)
    expr = re.sub(r"\$\w+|\$\{\w+\}", "", expr)  # Grafana variables
    found = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        name, call = match.groups()
        if call is None and name.lower() not in PROMQL_WORDS:
            found.add(name)
    return found


def test_the_expression_reader_finds_series_and_only_series() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{job="x", le!="1"}[5m])))'
        ' > 10 and on(instance) b_total unless c offset 1h / time() - d{x=~"$instance"}'
        " * 1e3 + group_left(e) ignoring(f) $__rate_interval"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c", "d"}


def dashboards() -> Iterator[tuple[str, dict[str, Any]]]:
    for role in ROLES:
        path = GRAFANA / f"dchat-{role}.json"
        yield role, json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def test_one_dashboard_per_role_that_loads_and_round_trips() -> None:
    assert sorted(p.name for p in GRAFANA.glob("*.json")) == sorted(
        f"dchat-{r}.json" for r in ROLES
    )
    uids = set()
    for role, dashboard in dashboards():
        assert json.loads(json.dumps(dashboard)) == dashboard
        assert isinstance(dashboard["title"], str)
        assert isinstance(dashboard["schemaVersion"], int)
        uids.add(dashboard["uid"])
        assert f'"dchat-{role}"' in json.dumps(dashboard["templating"])  # the role's job
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{role}: duplicate panel ids"
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert {"h", "w", "x", "y"} <= grid.keys()
            assert grid["x"] >= 0
            assert grid["x"] + grid["w"] <= 24
            if panel["type"] != "row":
                assert panel["targets"], panel["title"]
                refs = [t["refId"] for t in panel["targets"]]
                assert len(refs) == len(set(refs))
                assert all(t["expr"].strip() for t in panel["targets"])
    assert len(uids) == len(ROLES)


def test_every_metric_a_dashboard_queries_is_exported(exported: set[str]) -> None:
    for role, dashboard in dashboards():
        queried = set()
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                queried |= metric_names(target["expr"])
        assert queried, role
        assert queried - exported - FROM_PROMETHEUS == set(), role


def rules() -> dict[str, str]:
    """Alert name -> expression, read from alerts.yml's layout."""
    lines = (PROMETHEUS / "alerts.yml").read_text().splitlines()
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        if match := re.match(r"\s*- alert: (\w+)\s*$", line):
            expr_line = next(lx for lx in lines[i + 1 :] if lx.strip().startswith("expr:"))
            expr = expr_line.split("expr:", 1)[1].strip()
            if expr in (">-", ">", "|", "|-"):
                start = lines.index(expr_line, i) + 1
                indent = len(expr_line) - len(expr_line.lstrip())
                block = []
                for following in lines[start:]:
                    if following.strip() and len(following) - len(following.lstrip()) <= indent:
                        break
                    block.append(following.strip())
                expr = " ".join(block)
            found[match.group(1)] = expr
    return found


def test_every_metric_an_alert_uses_is_exported(exported: set[str]) -> None:
    expected = {
        "DchatRelayDown",
        "DchatDeliveryLatencyHigh",
        "DchatDiskNearlyFull",
        "DchatChainStalled",
        "DchatValidatorMissingVotes",
        "DchatBackupTooOld",
    }
    alerts = rules()
    assert expected <= alerts.keys()
    for name, expr in alerts.items():
        used = metric_names(expr)
        assert used, name
        assert used - exported - FROM_PROMETHEUS == set(), name


def test_the_alert_tests_cover_every_alert_quiet_and_firing() -> None:
    text = (PROMETHEUS / "alerts_test.yml").read_text()
    cases = re.findall(r"- eval_time: \S+\n\s*alertname: (\w+)\n\s*exp_alerts:( \[\])?", text)
    quiet = {name for name, empty in cases if empty}
    firing = {name for name, empty in cases if not empty}
    assert quiet == firing == set(rules())


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus")
        pytest.skip("promtool is not installed (Debian's prometheus brings it; .ci/run does)")
    return found


@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]]
)
def test_promtool_accepts_the_rules_and_their_unit_tests(command: list[str]) -> None:
    result = subprocess.run(
        [_promtool(), *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if command[0] == "check":
        assert f"{len(rules())} rules found" in result.stdout + result.stderr
