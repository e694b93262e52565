"""Wallet-side files: the light-client reader over a validator's API, the payment-channel book."""

from __future__ import annotations
