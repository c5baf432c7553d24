from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "apps.nodes"
    label = "nodes"
    verbose_name = "Nodes: edge nodes and the sync plane"

    def ready(self):
        # A commit that recorded events kicks an edge's relay (docs/edge.md, "Relay"); on a
        # cloud the listener returns after one settings check.
        from creatorcommerce.spine.events import on_outbox_commit

        from . import metrics  # noqa: F401  (an edge's relay backlog, read at scrape time)
        from .relay import relay_kick

        on_outbox_commit(relay_kick)
