"""allauth headless's session-token strategy, looking the session up once.

allauth's ``SessionTokenStrategy.lookup_session`` asks the session store whether the key
exists, then loads it: two cache reads (a Redis round trip each) on every authenticated API
call, the buy included. allauth ships the one-read version (``sessionkit.lookup_session``:
load the session; a missing or expired one clears its key); this strategy uses it.
"""

from __future__ import annotations

from allauth.headless.internal import sessionkit
from allauth.headless.tokens.strategies.sessions import SessionTokenStrategy as AllauthSessionTokenStrategy


class SessionTokenStrategy(AllauthSessionTokenStrategy):
    def lookup_session(self, session_token: str):
        if not session_token or len(session_token) > 64:  # not a key the store made
            return None
        return sessionkit.lookup_session(session_token)
