#!/bin/bash
# Boots a Debian root under systemd-nspawn with systemd as PID 1, installs the
# units from this checkout as docs/operations.md does, and checks that a
# member of the atlasd group reaches the system daemon (online and through the
# spool) while a non-member is refused. Not part of `make test`: it needs root,
# systemd-nspawn (Debian: systemd-container) and a Debian root made beforehand:
#   debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3 \
#       bookworm ROOT http://deb.debian.org/debian
# Usage: tests/systemd/container/boot-check.sh ROOT   (prints the check's log)
set -euo pipefail
root=$(realpath "$1")
repo=$(cd "$(dirname "$0")/../../.." && pwd)
# The checkout's virtualenv, rebased on the root's python3 (same minor version).
rm -rf "$root/opt/atlasd"
cp -a "$repo/.venv" "$root/opt/atlasd"
for py in "$root"/opt/atlasd/bin/python*; do ln -sfn /usr/bin/python3 "$py"; done
sed -i "s|^home = .*|home = /usr/bin|" "$root/opt/atlasd/pyvenv.cfg"
sed -i "1s|^#!.*python.*|#!/opt/atlasd/bin/python|" "$root"/opt/atlasd/bin/*
echo "$repo" > "$root/etc/atlasd-boot-check.repo"
install -m 0755 "$(dirname "$0")/inside.sh" "$root/usr/local/sbin/atlasd-boot-check"
cat > "$root/etc/systemd/system/atlasd-boot-check.service" <<'UNIT'
[Unit]
Description=atlasd boot check
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/usr/local/sbin/atlasd-boot-check > /var/log/atlasd-boot-check.log 2>&1; echo "exit $?" >> /var/log/atlasd-boot-check.log'
ExecStartPost=/bin/systemctl --no-block poweroff
UNIT
ln -sfn /etc/systemd/system/atlasd-boot-check.service \
    "$root/etc/systemd/system/multi-user.target.wants/atlasd-boot-check.service"
rm -f "$root/var/log/atlasd-boot-check.log"
timeout 300 systemd-nspawn -D "$root" --register=no --keep-unit --boot --quiet \
    --bind-ro="$repo" </dev/null >"$root/../nspawn-console.log" 2>&1 || true
cat "$root/var/log/atlasd-boot-check.log"
tail -n1 "$root/var/log/atlasd-boot-check.log" | grep -qx "exit 0"
