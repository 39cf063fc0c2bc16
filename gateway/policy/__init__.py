"""Who may connect and what one client may cost: credentials/JWT, origin rules, admission limits.

Each policy is a pure decision on plain values plus a thin hook for the
transports.  May import ``gateway.engine`` and ``gateway.core``; not
``gateway.ports`` (a sibling), ``gateway.http`` or ``gateway.process``.
"""
