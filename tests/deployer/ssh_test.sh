#!/bin/bash
# deployer_ssh: zdm-deploy against one real sshd on 127.13.1.1:2222.
#   usage: ssh_test.sh path/to/zdm-deploy
# Checks: file/copy/template/command/shell/stat over SSH+SFTP with the real files on disk,
# recap and exit 0, idempotent rerun; a failing task exits 2; a changed host key, an
# unknown host key and a host with nothing listening each fail that host with a one-line
# reason naming it and exit 4; --accept-new-host-keys; ProxyJump through a second sshd (the
# bastion, 127.13.1.3) from ansible_ssh_common_args; a Host alias of an ssh_config file.
set -u
ZDM=${1:?usage: ssh_test.sh path/to/zdm-deploy}
ADDR=127.13.1.1
PORT=2222
T=$(mktemp -d /tmp/zdm_deployer_ssh.XXXXXX)
SSHD_PID=
FAILS=0

cleanup() {
  [ -n "${BASTION_PID:-}" ] && kill "$BASTION_PID" 2>/dev/null
  if [ -n "$SSHD_PID" ]; then
    kill "$SSHD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SSHD_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

# --- one sshd -------------------------------------------------------------------------
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$T/otherkey"
ssh-keygen -q -t ed25519 -N '' -f "$T/client"
cp "$T/client.pub" "$T/authorized_keys"
chmod 755 "$T"
chmod 644 "$T/authorized_keys"
cat > "$T/sshd_config" <<EOC
Port $PORT
ListenAddress $ADDR
HostKey $T/hostkey
AuthorizedKeysFile $T/authorized_keys
PidFile $T/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
# bash sources ~/.bashrc for a command sshd runs unless it is a nested shell (SHLVL): as on a
# stock Debian host, whose .bashrc returns at once when not interactive.
SetEnv SHLVL=1
EOC
/usr/sbin/sshd -D -e -f "$T/sshd_config" 2> "$T/sshd.log" &
SSHD_PID=$!
up=
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/$ADDR/$PORT") 2>/dev/null; then up=1; break; fi
  kill -0 "$SSHD_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "FAIL: sshd did not start on $ADDR:$PORT"; cat "$T/sshd.log"; exit 1
fi

echo "[$ADDR]:$PORT $(cat "$T/hostkey.pub")" > "$T/known_hosts"
echo "[$ADDR]:$PORT $(cat "$T/otherkey.pub")" > "$T/known_hosts.changed"
: > "$T/known_hosts.empty"
USER_NAME=$(id -un)

cat > "$T/inventory.ini" <<EOC
[boxes]
box ansible_host=$ADDR ansible_port=$PORT base=$T/base

[ghosts]
ghost ansible_host=127.13.1.2 ansible_port=$PORT

[all:vars]
ansible_user=$USER_NAME
ansible_ssh_private_key_file=$T/client
EOC

mkdir -p "$T/templates"
printf 'local file\n' > "$T/local.txt"
cat > "$T/templates/greeting.j2" <<'EOC'
hello {{ inventory_hostname }} at {{ ansible_host }}
{% for g in groups['boxes'] %}
member {{ loop.index0 }}: {{ g }}
{% endfor %}
EOC

cat > "$T/play.yml" <<'EOC'
- name: Exercise the modules over SSH
  hosts: boxes
  vars:
    dir: "{{ base }}/work"
  tasks:
    - name: make a directory
      file: path={{ dir }}/sub state=directory mode=0750
    - name: copy inline content
      copy:
        content: "inline {{ inventory_hostname }}\n"
        dest: "{{ dir }}/inline.txt"
        mode: "0640"
    - name: copy a local file
      copy: src=local.txt dest={{ dir }}/local.txt
    - name: render a template
      template:
        src: greeting.j2
        dest: "{{ dir }}/greeting.txt"
    - name: link to the directory
      file:
        path: "{{ dir }}/link"
        src: "{{ dir }}/sub"
        state: link
    - name: run a command
      command: cat {{ dir }}/inline.txt
      register: cat_out
    - name: run a shell pipeline
      shell: "echo one two three | wc -w > {{ dir }}/words.txt; cat {{ dir }}/words.txt"
      register: words
    - name: stat the template output
      stat:
        path: "{{ dir }}/greeting.txt"
      register: st
    - name: check the results
      assert:
        that:
          - cat_out.stdout == 'inline box'
          - words.stdout | trim == '3'
          - st.stat.exists
          - st.stat.checksum | length == 64
    - name: skipped task
      command: "false"
      when: words.stdout == 'nope'
EOC

cat > "$T/failing.yml" <<'EOC'
- hosts: boxes
  tasks:
    - name: a failing command
      command: sh -c 'echo boom >&2; exit 3'
    - name: never reached
      command: "true"
EOC

cat > "$T/ghost.yml" <<'EOC'
- hosts: all
  tasks:
    - name: ping
      command: "true"
EOC

run() { # run NAME KNOWN_HOSTS PLAYBOOK [args]; sets RC, OUT
  local name=$1 kh=$2 pb=$3; shift 3
  OUT="$T/$name.out"
  timeout 120 "$ZDM" run "$pb" -i "$T/inventory.ini" --known-hosts "$kh" "$@" > "$OUT" 2>&1
  RC=$?
  echo "--- $name (exit $RC)"; cat "$OUT"
}

# --- 1: the modules, for real ------------------------------------------------------------
run first "$T/known_hosts" "$T/play.yml" --limit box
check "first run exits 0" test "$RC" = 0
check "first run recap" grep -qx 'box : ok=9 changed=7 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0' "$OUT"
W="$T/base/work"
check "directory exists with mode 750" test "$(stat -c %a "$W/sub")" = 750
check "inline content" test "$(cat "$W/inline.txt")" = "inline box"
check "inline mode 640" test "$(stat -c %a "$W/inline.txt")" = 640
check "local file copied" cmp -s "$T/local.txt" "$W/local.txt"
check "template rendered" test "$(cat "$W/greeting.txt")" = "$(printf 'hello box at %s\nmember 0: box' "$ADDR")"
check "symlink points to sub" test "$(readlink "$W/link")" = "$W/sub"
check "shell output written" test "$(cat "$W/words.txt")" = 3
check "no temporary upload files left" test -z "$(find "$W" -name '*.zdm-tmp-*')"

# --- 2: idempotent rerun -------------------------------------------------------------------
run second "$T/known_hosts" "$T/play.yml" --limit box
check "second run exits 0" test "$RC" = 0
check "second run changes only command/shell" grep -qx 'box : ok=9 changed=2 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0' "$OUT"

# --- 3: a failing task ---------------------------------------------------------------------
run failing "$T/known_hosts" "$T/failing.yml"
check "failing task exits 2" test "$RC" = 2
check "failure reason shows rc and stderr" grep -q '^failed: \[box\] => non-zero return code 3: boom$' "$OUT"
check "host stops after its failure" grep -qx 'box : ok=0 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0' "$OUT"

# --- 4: changed host key -------------------------------------------------------------------
run changed "$T/known_hosts.changed" "$T/play.yml" --limit box
check "changed host key exits 4" test "$RC" = 4
check "changed host key: one-line reason naming the host" \
  grep -qx "unreachable: \[box\] => box ($ADDR:$PORT): host key changed (known_hosts: $T/known_hosts.changed)" "$OUT"
check "nothing was run after the key mismatch" grep -qx 'box : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0' "$OUT"

# --- 5: unknown host key -------------------------------------------------------------------
run unknown "$T/known_hosts.empty" "$T/play.yml" --limit box
check "unknown host key exits 4" test "$RC" = 4
check "unknown host key: reason naming the host" \
  grep -qx "unreachable: \[box\] => box ($ADDR:$PORT): unknown host key (not in $T/known_hosts.empty; add it, e.g. with ssh-keyscan, or run with --accept-new-host-keys)" "$OUT"

# --- 5b: unknown host key accepted with --accept-new-host-keys (added to known_hosts) -----
: > "$T/known_hosts.new"
run accept "$T/known_hosts.new" "$T/play.yml" --limit box --accept-new-host-keys
check "--accept-new-host-keys: the run exits 0" test "$RC" = 0
check "--accept-new-host-keys: the key is in known_hosts" grep -q "$(cut -d' ' -f2 "$T/hostkey.pub")" "$T/known_hosts.new"
run accepted "$T/known_hosts.new" "$T/play.yml" --limit box
check "the accepted key is known afterwards" test "$RC" = 0

# --- 6: nothing listening ----------------------------------------------------------------
run ghost "$T/known_hosts" "$T/ghost.yml"
check "unreachable host exits 4" test "$RC" = 4
check "unreachable host: reason naming it" \
  grep -qx "unreachable: \[ghost\] => ghost (127.13.1.2:$PORT): connection refused" "$OUT"
check "the reachable host still ran" grep -qx 'box : ok=1 changed=1 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0' "$OUT"

# --- 7: bad options and parse errors -------------------------------------------------------
timeout 10 "$ZDM" run "$T/play.yml" > /dev/null 2>&1
check "missing --inventory exits 5" test $? = 5
printf -- '- hosts: all\n  tasks:\n    - name: x\n      bogus: 1\n' > "$T/bad.yml"
run parse "$T/known_hosts" "$T/bad.yml"
check "playbook parse error exits 4" test "$RC" = 4
check "parse error names file:line and key" grep -qx "ERROR! $T/bad.yml:4: unknown module or task keyword 'bogus'" "$OUT"

# --- 8: ProxyJump through a bastion sshd, and ~/.ssh/config -------------------------------
BASTION=127.13.1.3
sed -e "s/^ListenAddress .*/ListenAddress $BASTION/" -e "s|^PidFile .*|PidFile $T/bastion.pid|" \
  "$T/sshd_config" > "$T/bastion_config"
echo "LogLevel DEBUG1" >> "$T/bastion_config"
/usr/sbin/sshd -D -e -f "$T/bastion_config" 2> "$T/bastion.log" &
BASTION_PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$BASTION/$PORT") 2>/dev/null && break; sleep 0.1; done
cp "$T/known_hosts" "$T/known_hosts.jump"
echo "[$BASTION]:$PORT $(cat "$T/hostkey.pub")" >> "$T/known_hosts.jump"
cat > "$T/jump.ini" <<EOC
[boxes]
box ansible_host=$ADDR ansible_port=$PORT base=$T/base ansible_ssh_common_args='-o ProxyJump=$USER_NAME@$BASTION:$PORT'

[all:vars]
ansible_user=$USER_NAME
ansible_ssh_private_key_file=$T/client
EOC
OUT="$T/jump.out"
timeout 120 "$ZDM" run "$T/play.yml" -i "$T/jump.ini" --known-hosts "$T/known_hosts.jump" --ssh-config none > "$OUT" 2>&1
RC=$?
echo "--- jump (exit $RC)"; cat "$OUT"
check "ProxyJump (ansible_ssh_common_args): the play runs" test "$RC" = 0
check "ProxyJump: the connection went through the bastion (its direct-tcpip channel)" \
  grep -q "direct-tcpip" "$T/bastion.log"
kill "$BASTION_PID" 2>/dev/null

cat > "$T/ssh_config" <<EOC
Host boxalias
  HostName $ADDR
  Port $PORT
  User $USER_NAME
  IdentityFile $T/client
EOC
cat > "$T/alias.ini" <<EOC
[boxes]
box ansible_host=boxalias base=$T/base
EOC
OUT="$T/alias.out"
timeout 120 "$ZDM" run "$T/play.yml" -i "$T/alias.ini" --known-hosts "$T/known_hosts" --ssh-config "$T/ssh_config" > "$OUT" 2>&1
RC=$?
echo "--- ssh_config (exit $RC)"; cat "$OUT"
check "ssh_config: HostName, Port, User and IdentityFile of a Host alias" test "$RC" = 0

echo
if [ "$FAILS" -ne 0 ]; then echo "deployer_ssh: $FAILS check(s) failed"; exit 1; fi
echo "deployer_ssh: all checks passed"
