import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.nodes.services import node_register


class Command(BaseCommand):
    help = (
        "Register an edge node with this cloud: its NODE_ID and a file holding the public JWK that "
        "`manage.py node_key` printed on the edge ('-' reads stdin). Idempotent; a new key for a known "
        "node becomes its current key. --shop and --venue tie it to the shop it sells and the venue location "
        "whose stock it owns from its first catalog pull (docs/edge.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("node_id")
        parser.add_argument("jwk_file")
        parser.add_argument("--shop", help="the slug of the shop the edge sells")
        parser.add_argument("--venue", help="the name of the shop's venue location the edge stands at")

    def handle(self, *args, node_id, jwk_file, shop=None, venue=None, **options):
        try:
            text = self.stdin.read() if jwk_file == "-" else Path(jwk_file).read_text()
            jwk = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read a JWK from {jwk_file}: {exc}") from exc
        try:
            node, created = node_register(node_id=node_id, public_jwk=jwk, shop_slug=shop, venue_name=venue)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        state = "registered" if created else "already registered with this key"
        where = f"; sells {shop}, venue {venue}" if shop else ""
        self.stdout.write(self.style.SUCCESS(f"node {node.node_id}: {state} (kid {jwk.get('kid')}){where}"))
