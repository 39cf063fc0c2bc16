"""``gatewayctl``: operate a running gateway from outside (status, check, tail, publish).

Talks to the daemon over HTTP and ZeroMQ like any client does.
"""
