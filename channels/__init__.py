"""Channel adapters: each translates one platform (email, web chat, Zalo, Facebook) to and from
the conversation core (``conversations.model``): parse and verify, store durably, hand over,
send replies. They do not decide routing or workflow."""
