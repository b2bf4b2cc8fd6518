"""Posting staff confirmation forms the way a browser does: with the form's one-time action key
(accounts.action_keys)."""

import re

from accounts.action_keys import ACTION_KEY_FIELD, new_action_key

KEY_INPUT = re.compile(rf'name="{ACTION_KEY_FIELD}" value="([^"]*)"')


def confirm(client, url, data=None, **extra):
    """POST ``data`` from a newly opened confirmation form (a new action)."""
    return client.post(url, {**(data or {}), ACTION_KEY_FIELD: new_action_key()}, **extra)


def form_key(response) -> str:
    """The action key carried by the confirmation form of this page."""
    [key] = KEY_INPUT.findall(response.content.decode())
    return key
