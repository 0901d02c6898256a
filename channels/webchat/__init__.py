"""The public-service portal's live chat: a widget and a page (``/chat``), a WebSocket per
visitor (``/chat/ws``) with an HTTP fallback, journaled like the webhooks and parsed into the
inbox (``parse_webchat``); replies pushed to the visitor's open sockets (``WebchatSender``).

    settings.py  WebchatSettings ([channels.webchat])   token.py   visitor tokens (HMAC)
    routes.py    /chat, /chat/ws, /chat/messages        hub.py     open sockets, the sender
    events.py    journaled payload, parse_webchat       limits.py  per visitor/address rate
    history.py   the visitor's conversation, replies waiting for them
    wiring.py    build_webchat: all of it on the conversation core
    static/      chat.html, chat.js, chat.css, widget.js
"""
