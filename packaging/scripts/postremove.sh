#!/bin/sh
# vtconnector post-remove (deb postrm, rpm %postun). The databases in
# /var/lib/vtconnector, the logs and the vtconnector user are left in place,
# even on purge: they hold verdicts that cost VirusTotal quota.
set -e

case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
