"""allauth's account adapter: the project's answer to "who is the client?".

allauth keys its rate limits (signup, login, failed logins, ...) on
``get_adapter().get_client_ip(request)``; by default that is the proxy's address behind a
reverse proxy, one budget for everyone. It is ``creatorcommerce.clientip.client_ip`` here.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter

from .clientip import client_ip


class AccountAdapter(DefaultAccountAdapter):
    def get_client_ip(self, request) -> str:
        return client_ip(request)
