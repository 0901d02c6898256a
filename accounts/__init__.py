"""Accounts: users with roles and permissions (``model``), their passwords, sessions and API
tokens (``store``), and the ``tongdai users`` command (``cli``). The web app and the lab use
them; nothing here knows about pages."""
