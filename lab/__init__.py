"""The lab: a real Asterisk 22 and the engine, running on this machine for tests and demos.

Debian 12 has no Asterisk, so the lab runs Debian sid's Asterisk 22 inside a chroot
(``lab.chroot``), with the repository's ``asterisk_conf/`` deployed into it and the
``recordings/`` folder bind-mounted (``lab.asterisk``). The engine (``tongdai serve``) runs
beside it (``lab.engine``). Processes are tracked by pid files checked against
``/proc/PID/cmdline`` (``lab.procs``), so the lab only ever stops what it started.
``lab.ami_ready`` is a tiny blocking AMI probe; ``lab.cli`` wires ``tongdai lab up|down|status``.
"""
