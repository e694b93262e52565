"""The public surfaces of this package follow the export rules (one screen, one home)."""

from __future__ import annotations

import dchat_messaging
import dchat_messaging.bots
import dchat_messaging.lowlevel
import dchat_messaging.webhooks
from dchat_testing import check_export_surfaces


def test_the_export_surfaces_follow_the_rules() -> None:
    check_export_surfaces(dchat_messaging, dchat_messaging.lowlevel)
    check_export_surfaces(dchat_messaging, dchat_messaging.bots)
    check_export_surfaces(dchat_messaging, dchat_messaging.webhooks)
