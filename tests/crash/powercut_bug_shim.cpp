// Test-only LD_PRELOAD shim: a deliberately broken minivmm for the power-cut
// campaign, without touching storage/ or the real binary.
// It is built only as a test target (tests/crash/CMakeLists.txt) and takes
// effect only in a process started with LD_PRELOAD=<this .so> and
//
//   MINIVMM_POWERCUT_BUG=<bug>:<substring>
//
// where <substring> picks the image(s) to break by path (the fds that open()
// returned for a path containing it). Bugs:
//   drop-dsync   writes on those fds lose RWF_DSYNC: writethrough's "durable
//                before it completes" becomes "in the host page cache"
//   skip-flush   fdatasync on those fds completes at once without syncing:
//                the guest's flush is acknowledged but nothing is made durable
//
// Both the io_uring path (SQEs rewritten in io_uring_submit* just before
// liburing hands them to the kernel: RWF_DSYNC cleared, FSYNC turned into NOP
// with the same user_data) and the sync engine's pwritev2/fdatasync are
// covered. Nothing here makes a system call of its own after set-up, so
// minivmm's seccomp filters are unaffected.
#include <dlfcn.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { BUG_NONE, BUG_DROP_DSYNC, BUG_SKIP_FLUSH };
enum { MAX_FD = 4096 };

static int bug = BUG_NONE;
static const char* match = "";
static unsigned char broken_fd[MAX_FD];

using OpenFn = int (*)(const char*, int, ...);
using OpenatFn = int (*)(int, const char*, int, ...);
using SubmitFn = int (*)(struct io_uring*);
using SubmitWaitFn = int (*)(struct io_uring*, unsigned);
using Pwritev2Fn = ssize_t (*)(int, const struct iovec*, int, off_t, int);
using FdatasyncFn = int (*)(int);
static OpenFn real_open;
static OpenFn real_open64;
static OpenatFn real_openat;
static SubmitFn real_submit;
static SubmitWaitFn real_submit_and_wait;
static Pwritev2Fn real_pwritev2;
static FdatasyncFn real_fdatasync;

template <typename Fn>
static Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

__attribute__((constructor)) static void shim_init() {
  real_open = next<OpenFn>("open");
  real_open64 = next<OpenFn>("open64");
  real_openat = next<OpenatFn>("openat");
  real_submit = next<SubmitFn>("io_uring_submit");
  real_submit_and_wait = next<SubmitWaitFn>("io_uring_submit_and_wait");
  real_pwritev2 = next<Pwritev2Fn>("pwritev2");
  real_fdatasync = next<FdatasyncFn>("fdatasync");
  const char* spec = getenv("MINIVMM_POWERCUT_BUG");
  if (!spec || !*spec) return;
  const char* colon = strchr(spec, ':');
  size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
  if (name_len == 10 && !strncmp(spec, "drop-dsync", name_len)) {
    bug = BUG_DROP_DSYNC;
  } else if (name_len == 10 && !strncmp(spec, "skip-flush", name_len)) {
    bug = BUG_SKIP_FLUSH;
  } else {
    fprintf(stderr, "powercut_bug_shim: unknown bug in MINIVMM_POWERCUT_BUG=%s\n", spec);
    _exit(70);
  }
  match = colon ? colon + 1 : "";
  fprintf(stderr, "powercut_bug_shim: INJECTED BUG %.*s on images matching '%s'\n", (int)name_len,
          spec, match);
}

static void note(int fd, const char* path) {
  if (bug != BUG_NONE && fd >= 0 && fd < MAX_FD && path) {
    broken_fd[fd] = *match && strstr(path, match) != NULL;
    if (broken_fd[fd]) fprintf(stderr, "powercut_bug_shim: breaking fd %d (%s)\n", fd, path);
  }
}

static bool is_broken(int fd) { return bug != BUG_NONE && fd >= 0 && fd < MAX_FD && broken_fd[fd]; }

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE
             ? static_cast<mode_t>(va_arg(ap, int))
             : 0;
}

extern "C" {

int open(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = real_open(path, flags, mode);
  note(fd, path);
  return fd;
}

int open64(const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = (real_open64 ? real_open64 : real_open)(path, flags, mode);
  note(fd, path);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = real_openat(dirfd, path, flags, mode);
  note(fd, path);
  return fd;
}

// The SQEs liburing has not yet handed to the kernel: [sqe_head, sqe_tail).
static void break_sqes(struct io_uring* ring) {
  if (bug == BUG_NONE) return;
  struct io_uring_sq* sq = &ring->sq;
  for (unsigned i = sq->sqe_head; i != sq->sqe_tail; ++i) {
    struct io_uring_sqe* sqe = &sq->sqes[i & sq->ring_mask];
    if (!is_broken(sqe->fd)) continue;
    if (bug == BUG_DROP_DSYNC &&
        (sqe->opcode == IORING_OP_WRITEV || sqe->opcode == IORING_OP_WRITE)) {
      sqe->rw_flags &= ~RWF_DSYNC;
    } else if (bug == BUG_SKIP_FLUSH && sqe->opcode == IORING_OP_FSYNC) {
      __u64 data = sqe->user_data;
      io_uring_prep_nop(sqe);
      sqe->user_data = data;
    }
  }
}

int io_uring_submit(struct io_uring* ring) {
  break_sqes(ring);
  return real_submit(ring);
}

int io_uring_submit_and_wait(struct io_uring* ring, unsigned wait_nr) {
  break_sqes(ring);
  return real_submit_and_wait(ring, wait_nr);
}

ssize_t pwritev2(int fd, const struct iovec* iov, int iovcnt, off_t offset, int flags) {
  if (bug == BUG_DROP_DSYNC && is_broken(fd)) flags &= ~RWF_DSYNC;
  return real_pwritev2(fd, iov, iovcnt, offset, flags);
}

int fdatasync(int fd) {
  if (bug == BUG_SKIP_FLUSH && is_broken(fd)) return 0;
  return real_fdatasync(fd);
}

}  // extern "C"
