"""Alembic migrations of the tongdai database (run them with ``tongdai.db.migrate``)."""
