// minivmm: boots a Linux guest on KVM from a TOML config (see --help).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>

#include "vmm/config/cli.h"
#include "vmm/config/file_roles.h"
#include "vmm/host/thread_stacks.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/machine.h"
#include "vmm/run/exit_codes.h"
#include "vmm/run/startup_timeline.h"

namespace {

constexpr const char* kVersion = "minivmm 0.1.0";

// Log lines go to stderr so the guest console on stdout stays clean.
void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("minivmm");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

// With stdin, stdout or stderr closed at exec, the next open() would get
// that number and guest console output or log lines would land in, say, a
// disk image; point any closed one at /dev/null first.
void ensure_standard_fds() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int null_fd = open("/dev/null", O_RDWR);  // lowest free number: fd itself
      if (null_fd >= 0 && null_fd != fd) close(null_fd);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace minivmm;
  StartupTimeline timeline(std::chrono::steady_clock::now());
  // A reader that went away (`minivmm | head`) must not kill the VMM: with
  // SIGPIPE ignored, write(2) fails with EPIPE instead (signal(7), pipe(7)),
  // and the console output stops the guest gracefully (console_output.h).
  signal(SIGPIPE, SIG_IGN);
  ensure_standard_fds();
  // Before any thread starts: no thread stack big enough for a huge page.
  try {
    set_default_thread_stack_size(kThreadStackBytes);
  } catch (const std::exception& e) {
    std::cerr << "minivmm: " << e.what() << "\n";
    return exit_code::kInternal;
  }
  VmConfig config;
  try {
    const CliOptions cli = parse_cli(argc, argv);
    if (cli.help) {
      std::cout << usage_text();
      return exit_code::kOk;
    }
    if (cli.version) {
      std::cout << kVersion << "\n";
      return exit_code::kOk;
    }
    config = build_config(cli);
    // Before anything is opened, let alone truncated (file_roles.h).
    check_run_files(config, cli.config_path);
  } catch (const UsageError& e) {
    std::cerr << "minivmm: " << e.what() << "\n"
              << "Try 'minivmm --help'.\n";
    return exit_code::kUsage;
  } catch (const ConfigError& e) {
    std::cerr << "minivmm: config error: " << e.what() << "\n";
    return exit_code::kConfig;
  } catch (const BootFileError& e) {
    std::cerr << "minivmm: " << e.what() << "\n";
    return exit_code::kImage;
  } catch (const Error& e) {
    std::cerr << "minivmm: " << e.what() << "\n";
    return exit_code::kConfig;
  } catch (const std::exception& e) {
    // Out of memory, a library's own exception: still a message and a
    // documented exit code, never std::terminate's abort.
    std::cerr << "minivmm: internal error: " << e.what() << "\n";
    return exit_code::kInternal;
  }

  try {
    setup_logging(config.log_level);
    timeline.step("config parse, file checks and logging");
    return run_machine(config, timeline);
  } catch (const KvmUnavailable& e) {
    spdlog::error("{}", e.what());
    return exit_code::kKvmUnavailable;
  } catch (const ImageError& e) {
    spdlog::error("{}", e.what());
    return exit_code::kImage;
  } catch (const ConfigError& e) {
    // A value this host cannot run (guest RAM, disk count): known only at start.
    spdlog::error("config error: {}", e.what());
    return exit_code::kConfig;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return exit_code::kInternal;
  }
}
