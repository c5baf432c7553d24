"""The sync tests' fault proxy lives in ``creatorcommerce/faultproxy.py``, shared with the
two-node demo (``manage.py demo_edge``); this name stays for the tests that import it."""

from creatorcommerce.faultproxy import FaultProxy

__all__ = ["FaultProxy"]
