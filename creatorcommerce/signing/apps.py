from django.apps import AppConfig


class SigningConfig(AppConfig):
    name = "creatorcommerce.signing"
    label = "signing"
    verbose_name = "Signing keys"
