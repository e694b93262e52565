"""The public surfaces of this package follow the export rules (one screen, one home)."""

from __future__ import annotations

import dchat_network
import dchat_network.lowlevel
from dchat_testing import check_export_surfaces


def test_the_export_surfaces_follow_the_rules() -> None:
    check_export_surfaces(dchat_network, dchat_network.lowlevel)
