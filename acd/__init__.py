"""The project's own call distribution (ACD): agents, skills, fair queues, callbacks.

Package map (pure logic first; only the stores and the adapters touch the network):

- ``config``       agents, skills and queues as data (``agents_1022.toml``), validated; PJSIP
                   endpoints for the agents generated from the same file
- ``agent``        the agent state machine (available, ringing, on call, wrap-up, paused...)
- ``calls``        a call in line as a state machine; the ordered lines, offers and admissions
- ``strategies``   skill requirements with escalation; longest-idle, fewest-calls,
                   round-robin, skills-based
- ``conversations`` a conversation (chat, mail...) in line as a state machine
- ``desk``         conversations in line and the agents' conversation capacity
- ``dispatch``     the synchronous core: events in, offers and transitions out
- ``estimate``     the wait estimator;  ``waits``: what a waiting caller is told
- ``store``        the ``StateStore`` protocol for the live state
- ``memory_store`` one-node, in-process store;  ``redis_store``: several nodes, Redis
- ``queue_log``    Asterisk-format queue_log lines for existing queue-analysis tools

The asyncio shell and its adapters:

- ``router``       runs the rounds, hands offers to the adapters, drains the outbox in order
                   to the recorder and the listeners; agent operations and views for the web
- ``recorder``     transitions to the tickets and (voice only) the queue_log
- ``persistence``  the live state to the state store, and back at start
- ``legs``, ``voice``, ``voice_events``  the Asterisk voice adapter: direct dial,
                   Originate + Bridge, AMI events;  ``callbacks``: dialling callers back
- ``messaging``    the messaging adapter (``conversations.model.ConversationRouting``)
- ``service``      all of it built and started in order;  ``handover``, ``agi``: the IVR side
"""
