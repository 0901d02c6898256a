"""The Asterisk adapter, and nothing else: our own asyncio AMI client (``ami``), its wire format
and errors (``ami_messages``), the typed seam logic talks to (``ports``) and an in-memory AMI
for unit tests (``fake``). This package imports no domain."""
