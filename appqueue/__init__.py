"""Following Asterisk's own ``app_queue`` (``[acd] distribution = "asterisk"``, and the calls the
dialplan's fallback sends to it when the engine is away): tickets completed from AMI queue
events (``tracker``), calls the engine never saw rebuilt from Asterisk's ``queue_log``
(``reconcile``), one fallback-ticket helper for both (``fallback``), and the loop that feeds
them (``follow``).
"""
