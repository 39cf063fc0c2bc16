"""The process: configuration (a leaf), the daemon (the only place wiring parts), logs, systemd, main.

The top floor; it may import every floor below.  Nothing below imports it.
"""
