// The seccomp sandbox's filters (vmm/seccomp_filter.h), without KVM: each
// death test runs in a child process (gtest's threadsafe style re-executes
// this binary), starts a thread of one kind that loads that kind's filter
// exactly as minivmm does, and then either
// - does the work the kind needs (malloc, mutexes, log lines, its fds, thread
//   exit) and the child exits 0, or
// - makes a forbidden syscall, and the child must end with exit code 78 and
//   the violation line naming the thread kind and the syscall number.
// The hook is this test binary itself: minivmm has no way to run it.
// Where the parent must look at more than the exit status and stderr (a
// terminal's settings, a process the child signals), the child is a plain
// fork() instead.
#include "vmm/host/seccomp_filter.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vmm/host/seccomp_violation.h"
#include "vmm/host/terminal.h"
#include "vmm/run/exit_codes.h"

namespace minivmm {
namespace {

const ThreadKind kAllKinds[] = {ThreadKind::kVcpu, ThreadKind::kIoLoop, ThreadKind::kConsole,
                                ThreadKind::kControl, ThreadKind::kApi};

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

// The API server's work on a listening socket and an epoll set made before
// its filter (as api_server.cpp gets them): accept, read, answer, close.
TEST_F(SeccompFilterDeathTest, ApiServesAConnectionButCannotConnect) {
  auto body = [] {
    set_up_like_minivmm();
    const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string name = "minivmm-seccomp-api-" + std::to_string(getpid());
    std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: no file
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(listener, 4) != 0)
      std::_Exit(2);
    const int client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(client, reinterpret_cast<sockaddr*>(&addr), len) != 0) std::_Exit(3);
    if (write(client, "GET /", 5) != 5) std::_Exit(4);
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    std::thread t([&] {
      install_seccomp_filter(ThreadKind::kApi);
      epoll_event ev{};
      ev.events = EPOLLIN;
      epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
      epoll_wait(ep, &ev, 1, 1000);
      const int conn = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      char buf[8];
      if (conn < 0 || read(conn, buf, sizeof buf) != 5 || write(conn, "ok", 2) != 2) std::_Exit(5);
      close(conn);
      common_work();
      (void)connect(client, reinterpret_cast<sockaddr*>(&addr), len);  // traps
    });
    t.join();
    std::_Exit(0);
  };
  EXPECT_EXIT(body(), ::testing::ExitedWithCode(exit_code::kSeccompViolation),
              violation(ThreadKind::kApi, SYS_connect));
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
                                (void)mmap(nullptr, 4096, PROT_READ | PROT_EXEC,
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

// Outside the control kind, terminal settings may only be restored, and
// only on the console's terminal (the SIGSYS handler's one call).
TEST_F(SeccompFilterDeathTest, OnlyTheConsoleTerminalMayBeRestoredOutsideControl) {
  for (ThreadKind kind : {ThreadKind::kVcpu, ThreadKind::kIoLoop, ThreadKind::kConsole}) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] {
                                termios t{};
                                ioctl(kConsoleTerminalFd + 5, TCSETS, &t);
                              }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_ioctl));
    EXPECT_EXIT(run_sandboxed(kind,
                              [] {
                                termios t{};
                                ioctl(kConsoleTerminalFd, TCSETSF, &t);
                              }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_ioctl));
  }
}

// io_uring_enter starts whatever a ring's SQEs say; only the loop thread
// owns rings (the disks are drained and closed there).
TEST_F(SeccompFilterDeathTest, OnlyTheIoLoopMayEnterAnIoUring) {
  for (ThreadKind kind : {ThreadKind::kVcpu, ThreadKind::kConsole, ThreadKind::kControl}) {
    SCOPED_TRACE(thread_kind_name(kind));
    EXPECT_EXIT(run_sandboxed(kind, [] { syscall(SYS_io_uring_enter, -1, 0, 0, 0, nullptr, 0); }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_io_uring_enter));
  }
}

// tgkill is allowed for abort() (every kind) and the vCPU interrupt signal
// (control): both aimed at a thread of this process.
TEST_F(SeccompFilterDeathTest, EveryKindMaySignalItsOwnThreads) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    auto body = [kind] {
      static std::atomic<bool> caught{false};
      struct sigaction sa {};
      sa.sa_handler = [](int) { caught = true; };
      sigaction(SIGABRT, &sa, nullptr);
      run_sandboxed(kind, [] {
        if (syscall(SYS_tgkill, getpid(), gettid(), SIGABRT) != 0 || !caught) std::_Exit(3);
        common_work();
      });
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(0), "at work");
  }
}

// A process that only waits to be signalled, and dies with its parent.
pid_t start_bystander() {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    for (;;) pause();
  }
  return pid;
}

// With a signal the filter allows, aimed at another process: it must trap.
// Were it allowed, the bystander would die and the thread carry on (exit 0).
TEST_F(SeccompFilterDeathTest, NoKindMaySignalAnotherProcess) {
  for (ThreadKind kind : kAllKinds) {
    const int allowed_sig = kind == ThreadKind::kControl ? SIGRTMIN : SIGABRT;
    SCOPED_TRACE(thread_kind_name(kind));
    auto body = [kind, allowed_sig] {
      const pid_t bystander = start_bystander();
      run_sandboxed(kind, [bystander, allowed_sig] {
        syscall(SYS_tgkill, bystander, bystander, allowed_sig);
      });
    };
    EXPECT_EXIT(body(), ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                violation(kind, SYS_tgkill));
  }
}

#if defined(__x86_64__)
// getpid through the i386 ABI: int 0x80 with eax 20 (arch/x86/entry/syscalls/syscall_32.tbl).
long int80_getpid() {
  long ret;
  asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
  return ret;
}

// getpid through the x32 ABI: syscall with 39 | __X32_SYSCALL_BIT. The
// filter sees it even where the kernel has no x32 support (ENOSYS after).
long x32_getpid() {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(39L | __X32_SYSCALL_BIT) : "rcx", "r11", "memory");
  return ret;
}

// Whether this kernel runs int 0x80 at all (CONFIG_IA32_EMULATION, not
// ia32_emulation=0): without it the instruction faults before seccomp.
bool kernel_runs_int80() {
  const pid_t pid = fork();
  if (pid == 0) _exit(int80_getpid() == getpid() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A syscall of another ABI must be reported like any forbidden call, not
// kill only the calling thread (the process would hang on, silent).
TEST_F(SeccompFilterDeathTest, ForeignAbiSyscallsAreReportedInEveryKind) {
  const bool int80 = kernel_runs_int80();
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    if (int80) {
      EXPECT_EXIT(run_sandboxed(kind, [] { int80_getpid(); }),
                  ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                  std::string("seccomp: ") + thread_kind_name(kind) +
                      " thread made forbidden syscall 20 of a foreign ABI \\(arch 0x40000003");
    }
    EXPECT_EXIT(run_sandboxed(kind, [] { x32_getpid(); }),
                ::testing::ExitedWithCode(exit_code::kSeccompViolation),
                std::string("seccomp: ") + thread_kind_name(kind) +
                    " thread made forbidden syscall 39 of the x32 ABI \\(number 0x40000027");
  }
  if (!int80) GTEST_SKIP() << "int 0x80 faults on this kernel (no ia32 emulation); x32 checked";
}
#endif

// What a forbidden syscall leaves behind when the console's terminal is raw.
struct RawTerminalViolation {
  int status = 0;
  std::string log;  // the child's stderr
  termios before{};
  termios after{};
};

// A forked child whose stdin is a pty's slave puts it in raw mode as minivmm
// does, then a thread of `kind` loads its filter and calls openat.
RawTerminalViolation forbidden_call_with_raw_terminal(ThreadKind kind) {
  RawTerminalViolation r;
  int master = -1;
  int slave = -1;
  int err[2];
  if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0 || pipe(err) != 0) {
    ADD_FAILURE() << "openpty/pipe: " << std::strerror(errno);
    return r;
  }
  tcgetattr(slave, &r.before);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(slave, kConsoleTerminalFd);
    dup2(err[1], STDERR_FILENO);
    set_up_like_minivmm();
    const RawTerminal raw(kConsoleTerminalFd);
    termios now{};
    if (tcgetattr(kConsoleTerminalFd, &now) != 0 || (now.c_lflag & ICANON)) _exit(2);
    std::thread t([kind] {
      install_seccomp_filter(kind);
      syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
    });
    t.join();
    _exit(0);
  }
  close(err[1]);
  char buf[512];
  for (ssize_t n; (n = read(err[0], buf, sizeof(buf))) > 0;) r.log.append(buf, n);
  waitpid(pid, &r.status, 0);
  tcgetattr(slave, &r.after);
  close(err[0]);
  close(slave);
  close(master);
  return r;
}

// The SIGSYS handler restores the terminal from the thread that trapped; a
// filter refusing that would trap again inside the handler, and the kernel
// would kill the process (SIGSYS, status 159) with the terminal left raw.
TEST(SeccompViolation, EveryKindExitsWith78AndRestoresARawTerminal) {
  for (ThreadKind kind : kAllKinds) {
    SCOPED_TRACE(thread_kind_name(kind));
    const RawTerminalViolation r = forbidden_call_with_raw_terminal(kind);
    ASSERT_TRUE(WIFEXITED(r.status)) << "killed by signal " << WTERMSIG(r.status) << "; " << r.log;
    EXPECT_EQ(WEXITSTATUS(r.status), exit_code::kSeccompViolation) << r.log;
    EXPECT_NE(r.log.find(violation(kind, SYS_openat)), std::string::npos) << r.log;
    EXPECT_EQ(r.after.c_lflag, r.before.c_lflag);
    EXPECT_EQ(r.after.c_iflag, r.before.c_iflag);
    EXPECT_TRUE(r.after.c_lflag & ICANON);
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
    EXPECT_EQ(std::count(names.begin(), names.end(), "io_uring_enter"),
              kind == ThreadKind::kIoLoop ? 1 : 0)
        << thread_kind_name(kind);
  }
}

}  // namespace
}  // namespace minivmm
