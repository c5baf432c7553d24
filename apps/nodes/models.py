"""Edge nodes and the sync plane (docs/edge.md).

On the cloud: ``Node`` (a registered edge and its sync state), ``NodeEvent`` (each event
an edge relayed, once), ``NodeOrder`` (an edge order and the cloud order that mirrors it),
``NodeStock`` (an edge's stock rows, read-only here), ``NodeAllocation`` (the venue stock
handed to an edge, once). On an edge: ``RelayState`` (how far the cloud acknowledged, and the
backoff) and ``CatalogState`` (the catalog pull's).
"""

from django.db import models
from django.utils import timezone


class Node(models.Model):
    """An edge node registered with this cloud; its keys are ``SigningKey`` rows with
    ``node = node_id`` (creatorcommerce/signing). The sync state is kept up to date by the
    ingest, under this row's lock."""

    node_id = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True, help_text="An inactive node's batches are refused (401).")
    registered_at = models.DateTimeField(default=timezone.now)
    # What the edge sells (docs/edge.md, "Catalog to the edge"): its shop's catalog, and the
    # stock of its venue location, which it owns from its first catalog pull (venue_taken_at).
    shop = models.ForeignKey(
        "accounts.Shop", null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="What it sells."
    )
    venue = models.ForeignKey(
        "catalog.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": "venue"},
        help_text="The venue location whose stock the edge owns from its first catalog pull.",
    )
    venue_taken_at = models.DateTimeField(null=True, blank=True, help_text="When the venue's stock was handed over.")
    catalog_pulled_at = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    # The highest sequence such that every event 1..acked_seq is held (what the cloud answers).
    acked_seq = models.BigIntegerField(default=0)
    # The highest sequence held; above acked_seq, gaps are missing ranges (selectors.node_gaps).
    max_seq = models.BigIntegerField(default=0)
    events_held = models.BigIntegerField(default=0)
    # The edge's own running totals as of its batch ending at totals_seq:
    # {currency: {"orders": int, "units": int, "amount": decimal string}} (docs/edge.md).
    totals = models.JSONField(default=dict, blank=True)
    totals_seq = models.BigIntegerField(default=0)
    totals_at = models.DateTimeField(null=True, blank=True)
    # The edge's outbox head as it last reported it (``totals.head``): the sequence its newest
    # event has or will have, and that event's time on the edge's clock. What the lag is
    # measured against (docs/edge.md, "Reconciliation"); 0/null until an edge reports it.
    head_seq = models.BigIntegerField(default=0)
    head_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("node_id",)

    def __str__(self):
        return self.node_id


class NodeEvent(models.Model):
    """One event an edge relayed: held once per (node, event uuid) and per (node, seq)."""

    class Outcome(models.TextChoices):
        STORED = "stored", "Stored (for analytics)"
        APPLIED = "applied", "Applied to a mirror"
        STALE = "stale", "Older than the mirror (nothing changed)"
        UNRESOLVED = "unresolved", "Names unknown here (not applied)"

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="events")
    uuid = models.UUIDField()
    seq = models.BigIntegerField()
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField(default=dict)
    refs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(help_text="When the edge recorded it.")
    received_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.STORED)
    detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ("node", "seq")
        constraints = [
            # The arbiters of exactly once, whatever the ingest's own checks (docs/edge.md).
            models.UniqueConstraint(fields=("node", "uuid"), name="nodes_event_once"),
            models.UniqueConstraint(fields=("node", "seq"), name="nodes_event_one_per_seq"),
        ]

    def __str__(self):
        return f"{self.node_id}#{self.seq} {self.type}"


class NodeDay(models.Model):
    """The edge's totals of one day (UTC date of its orders' ``created_at``) as its newest
    batch reporting that day gave them (``totals.days``): ``{currency: {"orders", "units",
    "amount"}}``, ``{}`` for a day with nothing paid any more. Compared per day with the
    cloud's sums over the node's mirrored orders (docs/edge.md, "Reconciliation")."""

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="days")
    date = models.DateField()
    totals = models.JSONField(default=dict, blank=True)
    # The reporting batch's to_seq: an older batch (a replay) never overwrites a newer report.
    seq = models.BigIntegerField()
    reported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("node", "-date")
        constraints = [models.UniqueConstraint(fields=("node", "date"), name="nodes_day_once")]

    def __str__(self):
        return f"{self.node_id} {self.date}"


class NodeOrder(models.Model):
    """An order sold on an edge, materialised as ``order`` here (its origin node tagged)."""

    SHOP_PATH = "order__shop"

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="orders")
    edge_order = models.BigIntegerField(help_text="The order's id on the edge.")
    order = models.OneToOneField("orders.Order", on_delete=models.PROTECT, related_name="origin")
    # The sequence of the event whose document was applied last: older documents are ignored.
    doc_seq = models.BigIntegerField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("node", "-edge_order")
        constraints = [models.UniqueConstraint(fields=("node", "edge_order"), name="nodes_order_once")]

    def __str__(self):
        return f"{self.node_id}/{self.edge_order} -> {self.order_id}"


class NodeStock(models.Model):
    """An edge's stock row as the edge last reported it: read-only here (docs/edge.md,
    "Who owns what")."""

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="stock")
    shop = models.CharField(max_length=140, help_text="shop slug")
    sku = models.CharField(max_length=64, help_text="SKU code")
    location = models.CharField(max_length=120, help_text="location name")
    available = models.IntegerField()
    version = models.BigIntegerField()
    seq = models.BigIntegerField()
    stock_level = models.ForeignKey(
        "catalog.StockLevel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("node", "shop", "sku", "location")
        constraints = [
            models.UniqueConstraint(fields=("node", "shop", "sku", "location"), name="nodes_stock_one_row"),
        ]

    def __str__(self):
        return f"{self.node_id}: {self.shop}/{self.sku}@{self.location} = {self.available}"


class NodeAllocation(models.Model):
    """The units of one SKU at the node's venue handed to the edge when it took the venue
    over (docs/edge.md): recorded once, served in every catalog pull, applied once by the
    edge."""

    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="allocation")
    location = models.CharField(max_length=120, help_text="location name")
    sku = models.CharField(max_length=64, help_text="SKU code")
    units = models.IntegerField()
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("node", "sku")
        constraints = [models.UniqueConstraint(fields=("node", "location", "sku"), name="nodes_allocation_once")]

    def __str__(self):
        return f"{self.node_id}: {self.sku}@{self.location} = {self.units}"


class CatalogState(models.Model):
    """On an edge: the catalog pull's state (one row per node id): when the venue's
    allocation was applied (once), and the backoff after a failed pull."""

    node = models.CharField(max_length=64, unique=True)
    # The cloud's venue_taken_at whose allocation was applied here; set once, in the same
    # transaction as the stock it sets.
    allocation_of = models.CharField(max_length=40, blank=True, default="")
    allocation_applied_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    pulls = models.BigIntegerField(default=0)
    last_changes = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.node} catalog pulled {self.last_success_at}"


class RelayState(models.Model):
    """On an edge: how far the cloud has acknowledged this node's outbox, and when to try
    again after a failure (one row per node id)."""

    node = models.CharField(max_length=64, unique=True)
    acked_seq = models.BigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    batches_sent = models.BigIntegerField(default=0)
    events_sent = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.node} acked {self.acked_seq}"
