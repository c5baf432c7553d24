"""Authentication backends: Django's and allauth's, loading the session's user with one
prepared statement (``creatorcommerce.sql.row_by_pk``) instead of a QuerySet. Every
authenticated request does this, the one-tap buy included; the ORM's ``get(pk=...)`` was
about 900 Python calls of a buy's ~5,800 (cProfile)."""

from __future__ import annotations

from allauth.account.auth_backends import AuthenticationBackend as AllauthBackend
from django.contrib.auth import backends, get_user_model
from django.core.exceptions import ValidationError

from creatorcommerce.sql import row_by_pk


class _UserByPk:
    def get_user(self, user_id):
        try:
            user = row_by_pk(get_user_model(), user_id)
        except (TypeError, ValueError, ValidationError):  # a session holding something that is not a user id
            return None
        return user if user is not None and self.user_can_authenticate(user) else None


class ModelBackend(_UserByPk, backends.ModelBackend):
    pass


class AuthenticationBackend(_UserByPk, AllauthBackend):
    pass
