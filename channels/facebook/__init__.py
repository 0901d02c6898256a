"""Facebook Messenger (a page): signed webhooks in (``facebook_routes``, journaled, parsed
later by ``parse_facebook``), replies out through the Send API (``FacebookSender``).
``[channels.facebook]`` settings: ``FacebookSettings.from_table``.

    settings.py   FacebookSettings                 signature.py  hub challenge, X-Hub-Signature-256
    events.py     split_facebook, parse_facebook   routes.py     GET|POST /webhooks/facebook
    sender.py     Send API
"""

from channels.facebook.events import FbEvent, parse_facebook, split_facebook
from channels.facebook.routes import facebook_routes
from channels.facebook.sender import FacebookSender
from channels.facebook.settings import FacebookSettings
from channels.facebook.signature import challenge_answer, hub_signature, signature_ok
from channels.outbound import window_closed_message, window_open

__all__ = [
    "FacebookSender",
    "FacebookSettings",
    "FbEvent",
    "challenge_answer",
    "facebook_routes",
    "hub_signature",
    "parse_facebook",
    "signature_ok",
    "split_facebook",
    "window_closed_message",
    "window_open",
]
