// The seccomp sandbox's filters (vmm/seccomp_filter.h), without KVM: each
// death test runs in a child process (gtest's threadsafe style re-executes
// this binary), starts a thread of one kind that loads that kind's filter
// exactly as minivmm does, and then either
// - does the work the kind needs (malloc, mutexes, log lines, its fds, thread
//   exit) and the child exits 0, or
// - makes a forbidden syscall, and the child must end with exit code 78 and
//   the violation line naming the thread kind and the syscall number.
// The hook is this test binary itself: minivmm has no way to run it.
#include "vmm/host/seccomp_filter.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vmm/exit_codes.h"
#include "vmm/host/seccomp_violation.h"

namespace minivmm {
namespace {

const ThreadKind kAllKinds[] = {ThreadKind::kVcpu, ThreadKind::kIoLoop, ThreadKind::kConsole,
                                ThreadKind::kControl};

// What minivmm has done before any filter loads: the SIGSYS handler, and
// logging started (spdlog's logger exists, glibc has read the time zone).
void set_up_like_minivmm() {
  install_seccomp_violation_handler();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));  // as main.cpp
  spdlog::info("set-up done");
}

// In the death-test child: a thread of `kind` loads its filter, runs `body`
// and exits; then the child exits 0.
[[noreturn]] void run_sandboxed(ThreadKind kind, const std::function<void()>& body) {
  set_up_like_minivmm();
  std::thread t([&] {
    install_seccomp_filter(kind);
    body();
  });
  t.join();
  std::_Exit(0);
}

std::string violation(ThreadKind kind, long nr) {
  return std::string("seccomp: ") + thread_kind_name(kind) + " thread made forbidden syscall " +
         std::to_string(nr) + " ";
}

// What every kind does: heap (small and mmap-sized), a mutex, a log line.
void common_work() {
  auto big = std::make_unique<char[]>(8 << 20);
  big[0] = 1;
  std::vector<int> v(1000, 1);
  std::mutex mu;
  std::lock_guard lock(mu);
  spdlog::info("sandboxed thread at work ({} bytes)", v.size());
}

class SeccompFilterDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(SeccompFilterDeathTest, EveryKindDoesItsWork) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind, common_work), ::testing::ExitedWithCode(0), "at work");
  }
}

TEST_F(SeccompFilterDeathTest, IoLoopDoesDiskAndRingWork) {
  auto body = [] {
    char path[] = "/tmp/minivmm-seccomp-XXXXXX";
    const int fd = mkstemp(path);  // opened before the filter, as the disks are
    unlink(path);
    const int ev = eventfd(0, EFD_NONBLOCK);
    const int ep = epoll_create1(0);
    io_uring ring{};
    ASSERT_EQ(io_uring_queue_init(4, &ring, 0), 0);
    std::thread t([&] {
      install_seccomp_filter(ThreadKind::kIoLoop);
      char buf[512] = {1};
      iovec iov{buf, sizeof(buf)};
      if (pwritev2(fd, &iov, 1, 0, RWF_DSYNC) != 512) std::_Exit(3);
      if (preadv2(fd, &iov, 1, 0, 0) != 512) std::_Exit(4);
      if (fdatasync(fd) != 0 || fallocate(fd, 0, 0, 4096) != 0) std::_Exit(5);
      epoll_event e{};
      e.events = EPOLLIN;
      if (epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0 || epoll_wait(ep, &e, 1, 0) != 0) std::_Exit(6);
      const uint64_t one = 1;
      if (write(ev, &one, 8) != 8 || read(ev, buf, 8) != 8) std::_Exit(7);
      io_uring_prep_nop(io_uring_get_sqe(&ring));
      io_uring_cqe* cqe = nullptr;
      if (io_uring_submit(&ring) != 1 || io_uring_wait_cqe(&ring, &cqe) != 0) std::_Exit(8);
      common_work();
    });
    t.join();
    std::_Exit(0);
  };
  set_up_like_minivmm();
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "at work");
}

TEST_F(SeccompFilterDeathTest, ControlKicksAndRestoresTheTerminal) {
  auto body = [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigaction(SIGRTMIN, &sa, nullptr);
    run_sandboxed(ThreadKind::kControl, [] {
      if (pthread_kill(pthread_self(), SIGRTMIN) != 0) std::_Exit(3);  // the vCPU interrupt signal
      termios t{};
      tcgetattr(STDIN_FILENO, &t);  // ENOTTY is fine: the ioctl was allowed
      pollfd p{STDIN_FILENO, POLLIN, 0};
      poll(&p, 1, 0);
      common_work();
    });
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "at work");
}

TEST_F(SeccompFilterDeathTest, OpenatIsRefusedInEveryKind) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] { syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY); }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_openat));
  }
}

TEST_F(SeccompFilterDeathTest, SocketAndExecveAreRefusedInEveryKind) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind, [] { socket(AF_INET, SOCK_STREAM, 0); }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_socket));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] {
                                char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
                                execve("/bin/true", argv, environ);
                              }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_execve));
  }
}

// Argument filters: an allowed syscall with arguments outside the kind's list.
TEST_F(SeccompFilterDeathTest, VcpuMayOnlyMakeKvmIoctls) {
  EXPECT_EXIT(run_sandboxed(ThreadKind::kVcpu, [] { ioctl(STDIN_FILENO, TCGETS, nullptr); }),
              ::testing::ExitedWithCode(exit_code::kSeccompViolation),
              violation(ThreadKind::kVcpu, SYS_ioctl));
}

TEST_F(SeccompFilterDeathTest, ConsoleMayOnlyRaiseTheIrqLine) {
  EXPECT_EXIT(run_sandboxed(ThreadKind::kConsole, [] { ioctl(-1, KVM_RUN, 0); }),
              ::testing::ExitedWithCode(exit_code::kSeccompViolation),
              violation(ThreadKind::kConsole, SYS_ioctl));
}

TEST_F(SeccompFilterDeathTest, ControlMayOnlySendTheKickSignal) {
  EXPECT_EXIT(run_sandboxed(ThreadKind::kControl,
                            [] { syscall(SYS_tgkill, getpid(), gettid(), SIGKILL); }),
              ::testing::ExitedWithCode(exit_code::kSeccompViolation),
              violation(ThreadKind::kControl, SYS_tgkill));
}

TEST_F(SeccompFilterDeathTest, IoLoopMayNotRunTheVcpu) {
  EXPECT_EXIT(run_sandboxed(ThreadKind::kIoLoop, [] { ioctl(-1, KVM_RUN, 0); }),
              ::testing::ExitedWithCode(exit_code::kSeccompViolation),
              violation(ThreadKind::kIoLoop, SYS_ioctl));
}

TEST_F(SeccompFilterDeathTest, NoKindMayMapExecutableMemory) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] {
                                mmap(nullptr, 4096, PROT_READ | PROT_EXEC,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                              }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation), violation(kind, SYS_mmap));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] {
                                static char page[4096] __attribute__((aligned(4096)));
                                mprotect(page, sizeof(page), PROT_READ | PROT_WRITE | PROT_EXEC);
                              }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_mprotect));
  }
}

TEST(SeccompFilter, ListsLeaveOutWhatNoThreadNeeds) {
  for (ThreadKind kind : kAllKinds) {
    const auto names = seccomp_allowed_syscalls(kind);
    for (const char* never : {"openat", "open", "execve", "socket", "connect", "ptrace", "clone",
                              "clone3", "fork", "mount", "kill", "setuid", "prctl", "seccomp"}) {
      EXPECT_EQ(std::count(names.begin(), names.end(), never), 0)
          << thread_kind_name(kind) << " allows " << never;
    }
  }
}

}  // namespace
}  // namespace minivmm
