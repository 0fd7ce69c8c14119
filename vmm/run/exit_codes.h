// minivmm's process exit codes (documented in README.md, "Exit codes").
// A status the guest reports through the exit device (port 0x4f0) becomes
// the exit code as-is (value & 0xff); the VMM's own failures use 64..79 so a
// test can tell them from the guest's usual 0/1 verdicts.
#pragma once

namespace minivmm::exit_code {

inline constexpr int kOk =
    0;  // poweroff/reboot, SIGINT/SIGTERM, console reader gone, guest status 0
inline constexpr int kUsage = 64;           // bad command line
inline constexpr int kConfig = 65;          // bad config file or value
inline constexpr int kImage = 66;           // kernel/initrd/disk image missing or invalid
inline constexpr int kKvmUnavailable = 69;  // /dev/kvm missing, no access, missing capability
inline constexpr int kInternal = 70;        // unexpected host-side failure
inline constexpr int kUnhandledExit =
    75;  // a VM exit minivmm cannot handle (incl. emulation failure)
inline constexpr int kTripleFault = 76;  // guest shutdown by triple fault (KVM_EXIT_SHUTDOWN)
inline constexpr int kForcedStop =
    77;  // a second SIGINT/SIGTERM ended a graceful stop still under way
inline constexpr int kSeccompViolation = 78;  // a thread made a syscall its seccomp filter forbids

}  // namespace minivmm::exit_code
