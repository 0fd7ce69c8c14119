#include "vmm/machine.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <iterator>
#include <memory>
#include <thread>
#include <vector>

#include "common/event_loop.h"
#include "devices/legacy/exit_port.h"
#include "devices/legacy/i8042.h"
#include "devices/serial/uart8250.h"
#include "devices/virtio/virtio_mmio_transport.h"
#include "devices/virtio_blk/make_virtio_blk.h"
#include "devices/virtio_blk/virtio_blk.h"
#include "storage/disk.h"
#include "vmm/api/api_server.h"
#include "vmm/api/api_socket.h"
#include "vmm/api/machine_control.h"
#include "vmm/config/validate_config.h"
#include "vmm/host/console_input.h"
#include "vmm/host/console_output.h"
#include "vmm/host/rip_profile.h"
#include "vmm/host/seccomp_filter.h"
#include "vmm/host/seccomp_violation.h"
#include "vmm/host/stop_signals.h"
#include "vmm/host/terminal.h"
#include "vmm/kvm/io_bus.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/pvm_quirks.h"
#include "vmm/kvm/ram_limits.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vcpu_pause.h"
#include "vmm/kvm/vm.h"
#include "vmm/loader/bzimage_loader.h"
#include "vmm/loader/elf_loader.h"
#include "vmm/loader/initrd.h"
#include "vmm/loader/mapped_file.h"
#include "vmm/run/exit_codes.h"
#include "vmm/run/run_state.h"
#include "vmm/x86_64/boot_params.h"
#include "vmm/x86_64/long_mode_setup.h"
#include "vmm/x86_64/memory_layout.h"
#include "vmm/x86_64/mptable.h"
#include "vmm/x86_64/virtio_mmio_slots.h"

namespace minivmm {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadedKernel {
  uint64_t entry = 0;
  uint64_t end = 0;
  std::optional<setup_header> header;  // bzImage only
};

LoadedKernel load_kernel(const GuestMemory& mem, const std::string& path) {
  try {
    const MappedFile file(path, "kernel");
    const auto image = file.bytes();
    if (is_elf_image(image)) {
      const ElfLoadResult r = load_elf_kernel(mem, image, path);
      return {r.entry, r.kernel_end, std::nullopt};
    }
    if (is_bzimage(image)) {
      const BzImageLoadResult r = load_bzimage(mem, image, path);
      return {r.entry, r.kernel_end, r.header};
    }
  } catch (const Error& e) {
    throw ImageError(e.what());
  }
  throw ImageError(
      "kernel '" + path +
      "' is neither an ELF vmlinux nor a bzImage (no ELF magic, no \"HdrS\" at 0x202)");
}

// One virtio-blk disk with its transport, placed at a virtio-mmio slot.
struct BlockDevice {
  std::unique_ptr<virtio::VirtioMmioTransport> transport;
  VirtioMmioSlot slot;
  const storage::Disk* disk;       // owned by the transport's device; read on the loop thread
  virtio::blk::VirtioBlk* device;  // the transport's device (the API's FlushDisks)
};

BlockDevice make_block_device(const Vm& vm, EventLoop& loop, const DiskConfig& d, size_t index,
                              size_t disk_count) {
  storage::DiskOptions opts;
  opts.path = d.path;
  opts.cache = d.cache;
  opts.read_only = d.read_only;
  opts.engine = d.io_engine;
  opts.format = d.format;
  opts.write_log = d.write_log;
  std::unique_ptr<storage::Disk> disk;
  try {
    disk = storage::Disk::open(opts);
  } catch (const Error& e) {
    throw ImageError("disk " + std::to_string(index) + ": " + e.what());
  }
  virtio::blk::VirtioBlkOptions blk;
  blk.id = d.id;
  blk.num_queues = d.queues;
  BlockDevice dev;
  dev.disk = disk.get();
  dev.transport = virtio::blk::make_virtio_blk_mmio(vm.memory(), std::move(disk), blk, loop);
  dev.device = &dynamic_cast<virtio::blk::VirtioBlk&>(dev.transport->device());
  dev.slot = virtio_mmio_slot(index, disk_count);
  for (const auto& [queue, fd] : dev.transport->queue_notify_eventfds()) {
    vm.add_ioeventfd(dev.slot.base + 0x50, 4, queue, fd);  // QueueNotify (virtio 1.x 4.2.2)
  }
  vm.add_irqfd(dev.transport->irq_eventfd(), dev.slot.irq);
  spdlog::info("disk {}: {} cache={} {}at 0x{:x} irq {}{}", index, d.path,
               storage::to_string(d.cache), d.read_only ? "read-only " : "", dev.slot.base,
               dev.slot.irq, dev.slot.shared ? " (shared)" : "");
  return dev;
}

// Refuses guest RAM beyond what this host and KVM allow (ram_limits.h),
// before anything is allocated.
void check_ram_size(uint64_t ram_bytes, const std::vector<kvm_cpuid_entry2>& cpuid) {
  const std::vector<RamLimit> limits =
      guest_ram_limits(read_host_memory(), guest_phys_addr_bits(cpuid));
  check_guest_ram(ram_bytes, limits);
  if (!limits.empty()) {
    spdlog::debug("guest RAM limit on this host: {} MiB ({})", limits.front().bytes >> 20,
                  limits.front().why);
  }
}

// The disks against the room this kernel's command line leaves them, now
// that the kernel (its limit) and the PVM flags are known: the same rule as
// validate_config's bound (check_disk_count), with the exact numbers.
void check_disks_fit_cmdline(const VmConfig& config, bool pvm,
                             const std::optional<setup_header>& header) {
  const std::string rest = build_kernel_cmdline(config.cmdline, pvm, {});
  try {
    check_disk_count(config.disks.size(), rest.size(), max_cmdline_length(header),
                     fmt::format("the rest of the command line{} takes {}",
                                 pvm ? " (with the PVM guest flags)" : "", rest.size()));
  } catch (const ConfigValueError& e) {
    throw ConfigError(describe(config, e));
  }
}

// Names the calling thread (for ps, /proc/PID/task/*/comm) and, when the
// sandbox is on, loads its kind's seccomp filter: from here on the thread
// can make only the syscalls its kind needs.
void enter_thread(ThreadKind kind, const std::string& name, bool sandbox) {
  pthread_setname_np(pthread_self(), name.c_str());
  if (sandbox) install_seccomp_filter(kind);
}

// Waits until the run state says stop (a device, a vCPU, the signal
// watcher, the console's reader going away), taking a RIP sample from
// vCPU 0 every `sample_ms` if asked.
void wait_for_stop(RunState& state, Vcpu& sampled, uint32_t sample_ms) {
  while (!state.stopping()) {
    pollfd fd = {state.stop_fd(), POLLIN, 0};
    const int n = poll(&fd, 1, sample_ms ? static_cast<int>(sample_ms) : -1);
    if (n == 0) sampled.request_sample();
  }
}

// One line per disk, after the final flush (so it is counted): what the
// guest asked for and what reached the host (tests/e2e reads these lines).
void log_disk_stats(EventLoop& loop, const std::vector<BlockDevice>& disks) {
  for (size_t i = 0; i < disks.size(); ++i) {
    storage::DiskStats s;
    loop.run_sync([&] { s = disks[i].disk->stats(); });
    spdlog::info("{}", storage::format_disk_stats(i, s));  // SIGUSR1 logs the same line
  }
}

// Opens /dev/kvm, checks what the VM needs and decides on the PVM
// workarounds (pvm_quirks.h).
KvmSystem open_kvm(const VmConfig& config, bool& pvm) {
  KvmSystem kvm = KvmSystem::open(config.kvm_device);
  kvm.require_capabilities(config.vcpus);
  pvm = pvm_workarounds_active(config.pvm_workarounds);
  if (pvm) spdlog::info("PVM host: adding guest flags and int3 emulation");
  return kvm;
}

// The VM and its RAM, once the RAM size is known to fit this host.
Vm create_vm(const KvmSystem& kvm, const VmConfig& config,
             const std::vector<kvm_cpuid_entry2>& cpuid) {
  const uint64_t ram_bytes = config.memory_mib << 20;
  check_ram_size(ram_bytes, cpuid);
  return Vm(kvm, ram_bytes);
}

// Loads the initrd above the kernel and records where it went in `boot`.
void load_initrd_file(const GuestMemory& mem, const VmConfig& config, const LoadedKernel& kernel,
                      BootParamsConfig& boot) {
  if (config.initrd.empty()) return;
  const uint64_t max = kernel.header ? kernel.header->initrd_addr_max : kDefaultInitrdAddrMax;
  try {
    const MappedFile initrd(config.initrd, "initrd");
    const InitrdPlacement p = load_initrd(mem, initrd.bytes(), kernel.end, max, config.initrd);
    boot.initrd_addr = p.addr;
    boot.initrd_size = p.size;
  } catch (const Error& e) {
    throw ImageError(e.what());
  }
}

// The port I/O devices: the UART on COM1 with its console output, the exit
// device and the i8042 reset line, registered on `bus`.
struct LegacyDevices {
  LegacyDevices(const VmConfig& config, const Vm& vm, RunState& state, IoBus& bus)
      : console(config.serial_log,
                [&state] {
                  state.request_stop(exit_code::kOk, "the console's reader went away (EPIPE)");
                }),
        uart([&vm](bool level) { vm.set_irq_line(Uart8250::kCom1Irq, level); },
             [this](uint8_t b) { console.put(b); }),
        exit_port([&state](uint32_t v) {
          state.request_stop(static_cast<int>(v & 0xff),
                             "guest reported status " + std::to_string(v));
        }),
        i8042([&state] { state.request_stop(exit_code::kOk, "guest reset (i8042)"); }) {
    bus.add_pio(Uart8250::kCom1Port, 8, &uart);
    bus.add_pio(ExitPort::kPort, ExitPort::kSize, &exit_port);
    bus.add_pio(I8042::kDataPort, I8042::kSize, &i8042);
  }

  ConsoleOutput console;
  Uart8250 uart;
  ExitPort exit_port;
  I8042 i8042;
};

// One virtio-blk device per configured disk, each on its virtio-mmio slot
// of `bus`; adds each slot's virtio_mmio.device= entry to `mmio_args`.
std::vector<BlockDevice> attach_disks(const VmConfig& config, const Vm& vm, EventLoop& loop,
                                      IoBus& bus, std::vector<std::string>& mmio_args) {
  std::vector<BlockDevice> disks;
  for (size_t i = 0; i < config.disks.size(); ++i) {
    disks.push_back(make_block_device(vm, loop, config.disks[i], i, config.disks.size()));
    bus.add_mmio(disks.back().slot.base, layout::kVirtioMmioStride, disks.back().transport.get());
    mmio_args.push_back(virtio_mmio_device_param(disks.back().slot));
  }
  return disks;
}

// The zero page (command line, RNG seed, initrd), the MP table and the
// long-mode page tables.
void write_boot_tables(const GuestMemory& mem, const VmConfig& config, BootParamsConfig& boot) {
  boot.rng_seed.resize(32);
  if (getrandom(boot.rng_seed.data(), boot.rng_seed.size(), 0) != 32) {
    throw sys_error("getrandom for the guest RNG seed");
  }
  try {
    write_boot_params(mem, boot);
    write_mptable(mem, config.vcpus);
  } catch (const Error& e) {
    throw ImageError(e.what());
  }
  write_long_mode_tables(mem);
}

// The vCPUs: the boot CPU enters the kernel in 64-bit mode; the others wait
// for the INIT/SIPI Linux sends them (in-kernel LAPIC).
std::vector<std::unique_ptr<Vcpu>> create_vcpus(const KvmSystem& kvm, const Vm& vm,
                                                const VmConfig& config,
                                                const std::vector<kvm_cpuid_entry2>& cpuid,
                                                bool pvm, uint64_t entry) {
  install_vcpu_interrupt_handler();
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  for (uint32_t i = 0; i < config.vcpus; ++i) {
    vcpus.push_back(std::make_unique<Vcpu>(kvm, vm, i, cpuid,
                                           VcpuOptions{.emulate_int3 = pvm,
                                                       .hide_pv_hypercalls = pvm,
                                                       .hide_xsave = pvm,
                                                       .vcpu_count = config.vcpus}));
  }
  kvm_sregs sregs = vcpus[0]->sregs();
  set_long_mode_sregs(sregs);
  vcpus[0]->set_sregs(sregs);
  vcpus[0]->set_regs(long_mode_boot_regs(entry));
  return vcpus;
}

// With `serial.stdin`: the terminal in raw mode (when it is one) and the
// console thread feeding it to the UART.
void start_console_input(const VmConfig& config, Uart8250& uart, RunState& state,
                         std::optional<RawTerminal>& raw_terminal, std::jthread& stdin_thread) {
  if (!config.serial_stdin) return;
  raw_terminal.emplace(STDIN_FILENO);  // raw mode only when stdin is a terminal
  const bool sandbox = config.seccomp;
  stdin_thread = std::jthread([&uart, &state, sandbox] {
    try {
      enter_thread(ThreadKind::kConsole, "minivmm-console", sandbox);
      pump_console_input(STDIN_FILENO, state.stop_fd(), [&uart](const uint8_t* data, size_t len) {
        return uart.receive(data, len);
      });
    } catch (const std::exception& e) {
      spdlog::error("console input: {}", e.what());
      state.request_stop(exit_code::kInternal, e.what());
    }
  });
}

// One thread per vCPU, each under its seccomp filter, running KVM_RUN.
std::vector<std::jthread> start_vcpus(const std::vector<std::unique_ptr<Vcpu>>& vcpus,
                                      const IoBus& bus, RunState& state, bool sandbox) {
  std::vector<std::jthread> threads;
  for (const auto& v : vcpus) {
    threads.emplace_back([&bus, &state, sandbox, vcpu = v.get()] {
      try {
        enter_thread(ThreadKind::kVcpu, "minivmm-vcpu" + std::to_string(vcpu->index()), sandbox);
        vcpu->run(bus, state);
      } catch (const std::exception& e) {
        spdlog::error("vCPU {}: {}", vcpu->index(), e.what());
        state.request_stop(exit_code::kInternal, e.what());
      }
    });
  }
  return threads;
}

// The control API (vmm/api/), when configured: its server thread loads
// its own filter, so it starts before the main thread's.
// The disks as the API reaches them: their devices, on the loop that serves them.
struct ApiDisks {
  const std::vector<BlockDevice>& disks;
  EventLoop& loop;
};

struct ControlApi {
  ControlApi(UniqueFd listener, const VmConfig& config, RunState& state, VcpuPause& pause,
             const std::vector<std::unique_ptr<Vcpu>>& vcpus, ApiDisks disks,
             Clock::time_point started)
      : control(config, state, pause, vcpus, disk_pointers(disks.disks), devices(disks.disks),
                disks.loop, started),
        server(std::move(listener), config.api_socket, control, config.seccomp) {}

  static std::vector<const storage::Disk*> disk_pointers(const std::vector<BlockDevice>& disks) {
    std::vector<const storage::Disk*> out;
    for (const BlockDevice& d : disks) out.push_back(d.disk);
    return out;
  }
  static std::vector<virtio::blk::VirtioBlk*> devices(const std::vector<BlockDevice>& disks) {
    std::vector<virtio::blk::VirtioBlk*> out;
    for (const BlockDevice& d : disks) out.push_back(d.device);
    return out;
  }

  api::MachineControl control;
  api::ApiServer server;  // after `control`, which it calls
};

// Starts the control API; a failure stops the running vCPUs through the
// normal teardown (the socket is bound already: set-up checked the path).
void start_control_api(std::optional<ControlApi>& api, UniqueFd listener, const VmConfig& config,
                       RunState& state, VcpuPause& pause,
                       const std::vector<std::unique_ptr<Vcpu>>& vcpus, ApiDisks disks,
                       Clock::time_point started) {
  if (!listener) return;
  try {
    api.emplace(std::move(listener), config, state, pause, vcpus, disks, started);
  } catch (const std::exception& e) {
    spdlog::error("control API: {}", e.what());
    state.request_stop(exit_code::kInternal, e.what());
  }
}

// Last: a thread inherits its creator's filter, so the main thread's own
// comes after it has started every other thread.
// A failure stops the running vCPUs through the normal teardown.
void filter_main_thread(RunState& state, bool sandbox) {
  if (!sandbox) return;
  try {
    install_seccomp_filter(ThreadKind::kControl);
    spdlog::info("seccomp sandbox on: vcpu, io-loop, console, api and control threads filtered");
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    state.request_stop(exit_code::kInternal, e.what());
  }
}

// Stops the vCPUs and joins their threads; requests the guest already
// submitted finish before the disks close, then each disk's stats line.
// The disks close on the loop's thread, which owns them: whatever their
// engines still have to reap (io_uring_enter) is that thread's to do; the
// main thread's filter does not allow it.
void stop_vcpus_and_drain_disks(std::vector<std::unique_ptr<Vcpu>>& vcpus,
                                std::vector<std::jthread>& threads, EventLoop& loop,
                                std::vector<BlockDevice>& disks) {
  for (auto& v : vcpus) v->interrupt_run();
  for (auto& t : threads) t.join();
  for (auto& v : vcpus) spdlog::debug("{}", v->describe());
  for (auto& d : disks) d.transport->quiesce();
  log_disk_stats(loop, disks);
  loop.run_sync([&disks] { disks.clear(); });
}

// The RIP profile (when sampled) and how often int3 was emulated.
void report_vcpus(const VmConfig& config, const std::vector<std::unique_ptr<Vcpu>>& vcpus,
                  const std::string& system_map_text) {
  if (config.rip_sample_ms) print_rip_profile(vcpus[0]->rip_samples(), system_map_text);
  uint64_t int3 = 0;
  for (const auto& v : vcpus) int3 += v->int3_injections();
  if (int3) spdlog::info("int3 emulated {} time(s)", int3);
}

}  // namespace

std::string build_kernel_cmdline(const std::string& configured, bool pvm,
                                 const std::vector<std::string>& virtio_devices) {
  std::string cmdline = configured;
  auto append = [&](const std::string& word) {
    if (!cmdline.empty()) cmdline += ' ';
    cmdline += word;
  };
  if (pvm) append_pvm_guest_flags(cmdline);
  for (const auto& dev : virtio_devices) append("virtio_mmio.device=" + dev);
  return cmdline;
}

int run_machine(const VmConfig& config, StartupTimeline& timeline) {
  const bool sandbox = config.seccomp;
  if (sandbox) install_seccomp_violation_handler();
  RunState state;
  // Before any other thread starts, so every thread inherits the blocked
  // mask and SIGINT/SIGTERM reach only the watcher (stop_signals.h).
  const StopSignals stop_signals(state, [sandbox] {
    if (sandbox) install_seccomp_filter(ThreadKind::kControl);
  });
  timeline.step("stop signals");

  bool pvm = false;
  const KvmSystem kvm = open_kvm(config, pvm);
  timeline.step("/dev/kvm open and capabilities");
  const auto cpuid = kvm.supported_cpuid();
  timeline.step("supported CPUID");
  const Vm vm = create_vm(kvm, config, cpuid);
  const GuestMemory mem = vm.memory();
  timeline.step("VM create and RAM map");

  const LoadedKernel kernel = load_kernel(mem, config.kernel);
  check_disks_fit_cmdline(config, pvm, kernel.header);
  BootParamsConfig boot;
  boot.ram_size = config.memory_mib << 20;
  boot.kernel_header = kernel.header;
  load_initrd_file(mem, config, kernel, boot);
  timeline.step("kernel and initrd load");

  IoBus bus;
  LegacyDevices legacy(config, vm, state, bus);
  EventLoop device_loop("minivmm-io", EventLoop::Threading::OwnThread,
                        std::chrono::microseconds(config.io_poll_us));
  timeline.step("legacy devices and I/O thread");
  std::vector<std::string> mmio_args;
  std::vector<BlockDevice> disks = attach_disks(config, vm, device_loop, bus, mmio_args);
  timeline.step("disks open");

  boot.cmdline = build_kernel_cmdline(config.cmdline, pvm, mmio_args);
  write_boot_tables(mem, config, boot);
  spdlog::info("kernel {} entry 0x{:x}, {} MiB RAM, {} vCPU(s), cmdline: {}", config.kernel,
               kernel.entry, config.memory_mib, config.vcpus, boot.cmdline);
  timeline.step("boot tables");

  std::vector<std::unique_ptr<Vcpu>> vcpus =
      create_vcpus(kvm, vm, config, cpuid, pvm, kernel.entry);
  VcpuPause pause_gate(config.vcpus);
  for (auto& v : vcpus) v->set_pause_gate(pause_gate);
  timeline.step("vCPU create");
  // Bound before any vCPU runs: a path that cannot be served ends set-up.
  UniqueFd api_listener =
      config.api_socket.empty() ? UniqueFd() : api::listen_api_socket(config.api_socket);
  timeline.step("API socket");

  // Set-up is over: from here on every thread runs under its seccomp filter.
  const std::string system_map_text =
      config.rip_sample_ms ? read_system_map(config.system_map) : std::string();
  device_loop.run_sync([sandbox] { enter_thread(ThreadKind::kIoLoop, "minivmm-io", sandbox); });
  timeline.step("I/O thread seccomp");
  std::optional<RawTerminal> raw_terminal;
  std::jthread stdin_thread;
  start_console_input(config, legacy.uart, state, raw_terminal, stdin_thread);
  timeline.step("console input");
  spdlog::info("first KVM_RUN {:.2f} ms after start", timeline.ms());
  std::vector<std::jthread> threads = start_vcpus(vcpus, bus, state, sandbox);
  // Declared after the vCPUs, their threads and the disks: it goes first.
  std::optional<ControlApi> control_api;
  start_control_api(control_api, std::move(api_listener), config, state, pause_gate, vcpus,
                    {disks, device_loop}, timeline.started());
  filter_main_thread(state, sandbox);
  wait_for_stop(state, *vcpus[0], config.rip_sample_ms);
  control_api.reset();         // no request from here on touches a disk or a vCPU
  pause_gate.wake_for_stop();  // paused vCPUs see the stop

  stop_vcpus_and_drain_disks(vcpus, threads, device_loop, disks);
  legacy.console.flush();
  raw_terminal.reset();
  report_vcpus(config, vcpus, system_map_text);
  spdlog::info("guest stopped after {:.0f} ms: {} (exit code {})", timeline.ms(), state.reason(),
               state.exit_code());
  return state.exit_code();
}

}  // namespace minivmm
