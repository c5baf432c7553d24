from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Shop
from apps.personalization.services import model_train, models_train


class Command(BaseCommand):
    help = (
        "Train the co-purchase model now (docs/personalization.md): of one shop (--shop SLUG), of every "
        "shop (--all), or, by default, of the shops beat would train (new orders, or an old model)."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--shop", help="the shop's slug")
        group.add_argument("--all", action="store_true", help="every shop")

    def handle(self, *args, shop=None, **options):
        if shop is not None:
            found = Shop.objects.filter(slug=shop).first()
            if found is None:
                raise CommandError(f"no shop with the slug {shop!r}")
            shops = [found]
        elif options["all"]:
            shops = list(Shop.objects.order_by("pk"))
        else:
            result = models_train()
            self.stdout.write(self.style.SUCCESS(f"trained {result['trained']} shop model(s)"))
            return
        for one in shops:
            model = model_train(shop=one)
            self.stdout.write(
                self.style.SUCCESS(
                    f"{one.slug}: version {model.version}, {model.items} items, {model.pairs} neighbours "
                    f"from {model.orders} orders"
                )
            )
