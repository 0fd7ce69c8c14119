#!/bin/busybox sh
# PID 1 of the nested-KVM sandbox (tools/nested_kvm.py builds it into the
# initramfs). Loads the modules, mounts the host's / read-only over 9p and the
# directories the command may write ($RUN/mounts) read-write over their own
# paths, mounts a scratch ext4 on /var/tmp, then runs $RUN/cmd.sh chrooted
# into the host's tree:
#   ttyS0 console and kernel log   ttyS1 command stdout   ttyS2 command stderr
#   ttyS3 heartbeat (the runner's freeze watchdog)
# It reports the command's exit status in $RUN/status, or why the sandbox could
# not run it in $RUN/infra_error, then powers the machine off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

arg() { sed -n "s/.*minivmm\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
RUN=$(arg run)
MKFS=$(arg mkfs)
GRACE=$(arg grace)
say() { echo "nested-kvm-init [$(cut -d' ' -f1 /proc/uptime)]: $*" >/dev/ttyS0; }
off() { sync; poweroff -f; sleep 30; }
# Before /ctl is mounted the only channel is the console log.
infra() {
	say "$*"
	[ -d /ctl ] && echo "$*" >/ctl/infra_error
	off
}

# Heartbeat first: a kernel that stops scheduling stops it too.
(n=0; while :; do n=$((n + 1)); echo "hb $n $(cut -d' ' -f1 /proc/uptime)" >/dev/ttyS3; sleep 2; done) &

failed=""
while read -r mod; do
	insmod "/lib/modules/$mod" 2>/dev/ttyS0 || failed="$failed $mod"
done </lib/modules/order

say "modules loaded"
# The run directory, uncached: the runner creates files there (stop) while we
# run. The host's / is read-only (QEMU exports it readonly=on, and it is
# mounted ro) and read through the page cache (cache=loose): executables and
# libraries load several times faster, and nothing inside can write it, so
# the cache holds nothing a killed sandbox could lose.
mkdir -p /ctl /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 run /ctl ||
	infra "cannot mount the run directory over 9p (modules that failed:${failed:- none})"
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose host /host ||
	infra "cannot mount the host's / over 9p"
[ -d "/host$RUN" ] || infra "run directory $RUN is not visible over 9p"
# What the command may write (the repository, the build tree, the cache,
# TMPDIR, --rw), each over its own path, uncached: a write() that returned is
# in the host's page cache, so killing the sandbox loses no completed write,
# and the host and the command see the same files.
while read -r tag dir; do
	[ -d "/host$dir" ] || infra "read-write directory $dir is not a directory in the host's /"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "/host$dir" ||
		infra "cannot mount $dir read-write over 9p (mount tag $tag)"
done </ctl/mounts
# Inside the command's root the run directory is the uncached export too, so
# what the command writes there ($MINIVMM_NESTED_RUN_DIR) is on the host at
# once and survives the machine being killed (power-cut campaign write logs).
mount --bind /ctl "/host$RUN" || infra "cannot bind the run directory into the command's root"
if [ ! -c /dev/kvm ]; then
	cpu=$(grep -c -w svm /proc/cpuinfo)
	infra "no /dev/kvm in the sandbox: kvm_amd did not load (modules that failed:${failed:- none}; CPUs with svm: $cpu; $(dmesg | grep -i -E 'kvm|svm' | tail -n 3 | tr '\n' ' '))"
fi

mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs tmpfs /dev/shm
mount --rbind /dev /host/dev
mount -t proc proc /host/proc
mount --rbind /sys /host/sys
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null

# Disk images go on a real block device: O_DIRECT, fdatasync and loop devices
# behave as on a host, which 9p does not give.
if [ "$MKFS" = 1 ]; then
	chroot /host env PATH=/usr/sbin:/usr/bin:/sbin:/bin mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 /dev/vda >/dev/ttyS0 2>&1 ||
		infra "mkfs.ext4 on the scratch disk failed"
fi
mount -t ext4 /dev/vda /host/var/tmp || infra "cannot mount the scratch disk on /var/tmp"
chmod 1777 /host/var/tmp

say "scratch disk on /var/tmp; running the command"
echo "started" >/dev/ttyS3 # the runner's --timeout counts from here
stty -F /dev/ttyS1 raw -echo
stty -F /dev/ttyS2 raw -echo
# The watcher stops the command's whole process group (cmd.sh records its
# pid, which setsid made a group leader) when the runner asks.
(
	while [ ! -e /ctl/stop ]; do sleep 1; done
	# A stop can come before cmd.sh has recorded its pid: wait for it.
	n=0
	while [ ! -s "/host$RUN/pid" ] && [ $n -lt 50 ]; do sleep 0.2; n=$((n + 1)); done
	pid=$(cat "/host$RUN/pid" 2>/dev/null)
	say "stop requested: SIGTERM to the command (process group ${pid:-unknown})"
	[ -n "$pid" ] && kill -TERM -"$pid" 2>/dev/null
	sleep "${GRACE:-20}"
	say "command still running after ${GRACE:-20}s: SIGKILL"
	[ -n "$pid" ] && kill -KILL -"$pid" 2>/dev/null
) &
watcher=$!
# In the foreground: a background job of a non-interactive shell starts with
# SIGINT and SIGQUIT ignored, and the command must see the dispositions a
# command started from a terminal sees.
setsid chroot /host /bin/sh "$RUN/cmd.sh" </dev/null >/dev/ttyS1 2>/dev/ttyS2
rc=$?
say "command exited with status $rc"
kill "$watcher" 2>/dev/null
pid=$(cat "/host$RUN/pid" 2>/dev/null)
[ -n "$pid" ] && kill -KILL -"$pid" 2>/dev/null # what the command left behind in its group
sync
echo "$rc" >/ctl/status.tmp && mv /ctl/status.tmp /ctl/status
umount /host/var/tmp 2>/dev/null || umount -l /host/var/tmp
off
