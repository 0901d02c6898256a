"""The project's own call distribution (ACD): agents, skills, fair queues, callbacks.

Package map (pure logic first; only the stores and the distributor touch the network):

- ``config``       agents, skills and queues as data (``agents_1022.toml``), validated; PJSIP
                   endpoints for the agents generated from the same file
- ``agent``        the agent state machine (available, ringing, on call, wrap-up, paused...)
- ``calls``        a call in line as a state machine; the ordered lines, offers and admissions
- ``strategies``   skill requirements with escalation; longest-idle, fewest-calls,
                   round-robin, skills-based
- ``dispatch``     the synchronous core: events in, offers and transitions out
- ``estimate``     the estimated wait announced to callers (only when supported by data)
- ``store``        the ``StateStore`` protocol for the live state, and its helpers
- ``memory_store`` one-node, in-process store;  ``redis_store``: several nodes, Redis
- ``queue_log``    Asterisk-format queue_log lines for existing queue-analysis tools
- ``distributor``  (lead) AMI side: MusicOnHold, Originate to agents, bridge on answer
"""
