"""The back office: the agencies a ticket is forwarded to, their working-day deadlines on the
office calendar, the forwards themselves (store and workflow) and their figures."""
