#!/bin/sh
# vtconnector pre-install (deb preinst, rpm %pre): the system user and group
# the systemd units run as. Runs on install and on upgrade; does nothing when
# they exist (an administrator's own vtconnector user is kept as it is).
set -e

if ! getent group vtconnector >/dev/null 2>&1; then
	groupadd --system vtconnector
fi
if ! getent passwd vtconnector >/dev/null 2>&1; then
	shell=/usr/sbin/nologin
	[ -x "$shell" ] || shell=/sbin/nologin
	useradd --system --gid vtconnector --home-dir /var/lib/vtconnector --no-create-home \
		--shell "$shell" --comment "vtconnector daemon" vtconnector
fi
exit 0
