#!/bin/sh
# vtconnector post-install (deb postinst, rpm %post). Arguments: deb
# "configure" [previously installed version]; rpm 1 (install) or 2 (upgrade).
set -e

case "$1" in
abort-*) exit 0 ;;
esac

first_install=no
case "$1" in
1) first_install=yes ;;
configure) [ -z "$2" ] && first_install=yes ;;
esac

# The state directory (database_url's default, /var/lib/vtconnector/carbonblack.db,
# and the OpenCTI unit's opencti.db) and the Carbon Black log directory. The
# units' StateDirectory= and LogsDirectory= make them too; made here so that
# `vtconnector ... --db /var/lib/vtconnector/...` works before the first start.
install -d -o vtconnector -g vtconnector -m 0750 /var/lib/vtconnector
install -d -m 0755 /var/log/cb/integrations
install -d -o vtconnector -g vtconnector -m 0750 /var/log/cb/integrations/virustotal

# The configurations hold tokens: readable by the service's group only. Done
# on the first install only; an administrator's later choice is kept. This
# also covers an original cb-virustotal-connector connector.conf kept in place.
if [ "$first_install" = yes ]; then
	for f in /etc/cb/integrations/virustotal/connector.conf /etc/vtconnector/opencti.env; do
		if [ -f "$f" ]; then
			chgrp vtconnector "$f"
			chmod 0640 "$f"
		fi
	done
	if [ -d /etc/vtconnector ]; then
		chgrp vtconnector /etc/vtconnector
		chmod 0750 /etc/vtconnector
	fi
fi

# Neither unit is enabled or started: the configuration must be edited first
# (as the original connector's package did). An upgrade restarts the units
# that are running, on the new binary.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if [ "$first_install" = no ]; then
		systemctl try-restart vtconnector-carbonblack.service vtconnector-opencti.service || true
	fi
fi
exit 0
