#!/bin/sh
# vtconnector pre-remove (deb prerm, rpm %preun). Arguments: deb "remove" or
# "upgrade"; rpm 0 (removal) or 1 (upgrade). Only a removal stops and
# disables the units; an upgrade restarts them in the post-install script.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl --no-reload disable --now vtconnector-carbonblack.service vtconnector-opencti.service || true
	fi
	;;
esac
exit 0
