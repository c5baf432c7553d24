import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.nodes.services import node_register


class Command(BaseCommand):
    help = (
        "Register an edge node with this cloud: its NODE_ID and a file holding the public JWK that "
        "`manage.py node_key` printed on the edge ('-' reads stdin). Idempotent; a new key for a known "
        "node becomes its current key (docs/edge.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("node_id")
        parser.add_argument("jwk_file")

    def handle(self, *args, node_id, jwk_file, **options):
        try:
            text = self.stdin.read() if jwk_file == "-" else Path(jwk_file).read_text()
            jwk = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read a JWK from {jwk_file}: {exc}") from exc
        try:
            node, created = node_register(node_id=node_id, public_jwk=jwk)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        state = "registered" if created else "already registered with this key"
        self.stdout.write(self.style.SUCCESS(f"node {node.node_id}: {state} (kid {jwk.get('kid')})"))
