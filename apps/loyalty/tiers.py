"""stub: helper L2 replaces this file

Tiers (docs/loyalty.md). Only the signature moderation (helper L3) calls.
"""

from __future__ import annotations


def tier_recheck(*, user, shop, now):
    """stub: helper L2 replaces this file"""
    return None
