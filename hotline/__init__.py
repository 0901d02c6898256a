"""The roof: wires the domains into the running engine and the ``tongdai`` command.

Nothing below imports this package. ``serve`` assembles the engine process (stores, menu,
FastAGI, AMI, our ACD, the web app), ``scripts`` is the registry of AGI scripts the domains
provide, ``metrics`` the Prometheus counters the engine feeds, ``cli`` the command line.
"""
