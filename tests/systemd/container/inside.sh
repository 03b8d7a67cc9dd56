#!/bin/bash
# Runs inside the booted container (see boot-check.sh): the documented install
# steps, then a group member and a non-member against the system daemon.
set -euxo pipefail
cd "$(cat /etc/atlasd-boot-check.repo)"   # the checkout, bind-mounted read-only
# A root used before: start from a machine without atlasd's state and users.
systemctl stop atlasd.socket atlasd.service 2>/dev/null || true
rm -rf /var/lib/atlasd /etc/systemd/system/atlasd.service.d
for u in alice bob; do ! id "$u" >/dev/null 2>&1 || userdel -r "$u" 2>/dev/null; done
ln -sfn /opt/atlasd/bin/atlasd /usr/local/bin/atlasd
install -m 0644 systemd/atlasd.sysusers /usr/lib/sysusers.d/atlasd.conf
systemd-sysusers
install -m 0644 systemd/atlasd.tmpfiles /usr/lib/tmpfiles.d/atlasd.conf
systemd-tmpfiles --create /usr/lib/tmpfiles.d/atlasd.conf
install -D -m 0644 docs/operations.md /usr/local/share/doc/atlasd/operations.md
install -m 0644 systemd/atlasd.service systemd/atlasd.socket /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now atlasd.socket atlasd.service
useradd -m alice && usermod -aG atlasd alice
useradd -m bob
as() { runuser -u "$1" -- env -u XDG_RUNTIME_DIR "${@:2}"; }
as alice atlasd emit note:alice Noted '{"n": 1}'
systemctl show -p StatusText -p ActiveState atlasd.service
# bob is not in the group: the socket refuses him (forbidden, exit 1), nothing spooled.
set +e; as bob atlasd emit note:bob Noted '{"n": 1}'; code=$?; set -e
test "$code" = 1
# The daemon down: alice's event goes to the system spool, ingested on start.
systemctl stop atlasd.socket atlasd.service
as alice atlasd emit note:alice Noted '{"n": 2}'
ls -l /var/lib/atlasd/spool
systemctl start atlasd.socket
as alice atlasd status
for _ in $(seq 50); do
  [ -z "$(find /var/lib/atlasd/spool -maxdepth 1 -name '*.ndjson')" ] && break; sleep 0.2
done
as alice atlasd status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["last_seq"] == 2, s'
sleep 6   # one STATUS= refresh
systemctl show -p StatusText atlasd.service
systemctl show -p StatusText atlasd.service | grep -q "last_seq 2"
# The controls, with a private user namespace (peers appear as uid 65534;
# only the service's own uid and gid stay mapped):
mkdir -p /etc/systemd/system/atlasd.service.d
drop_in=/etc/systemd/system/atlasd.service.d/private-users.conf
namespaced() {
  printf '[Service]\nPrivateUsers=yes\nProtectProc=%s\n' "$1" > "$drop_in"
  systemctl daemon-reload && systemctl restart atlasd.service
  cat "/proc/$(systemctl show -p MainPID --value atlasd.service)/uid_map"
  set +e; as alice atlasd emit note:alice Noted "{\"proc\": \"$1\"}"; code=$?; set -e
}
# ProtectProc=default: alice's groups in /proc/PID/status still show the
# mapped atlasd gid, so she is let in (as uid 65534 in the daemon's logs).
namespaced default
test "$code" = 0
# ProtectProc=invisible too (the unit before): /proc is hidden, the group
# database knows no member "nobody", alice is refused.
namespaced invisible
test "$code" = 1
rm -r /etc/systemd/system/atlasd.service.d && systemctl daemon-reload
systemctl stop atlasd.socket atlasd.service
journalctl -u atlasd.service -u atlasd.socket --no-pager | tail -n 40
