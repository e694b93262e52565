"""dchat-privacy: privacy primitives. So far: size-bucket padding."""

from __future__ import annotations

from ._padding import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._padding import DchatPrivacyError as DchatPrivacyError
from ._padding import PaddingError as PaddingError
from ._padding import PaddingTooLargeError as PaddingTooLargeError
from ._padding import pad as pad
from ._padding import unpad as unpad

__all__ = (
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "PaddingError",
    "PaddingTooLargeError",
    "pad",
    "unpad",
)
