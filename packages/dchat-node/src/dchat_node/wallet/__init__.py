"""Wallet-side files: the payment-channel book (the light-client file is dchat-chain's)."""

from __future__ import annotations
