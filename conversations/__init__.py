"""Conversations: messages on every channel (email, web chat, Zalo, Facebook) as tickets.

The channel-independent core: what a channel adapter hands in (``model.InboundMessage``), the
ports it talks to (``model``: ``InboundSink``, ``EventJournal``, ``ChannelSender``), and the
services behind them. Adapters live in ``channels/``; they translate and carry out, they never
decide.
"""
