// 4 KiB writes/reads through minivmm::storage::Disk for each cache mode, at
// QD1 and QD32, plus writes with a flush every N; each row is compared with
// `qemu-img bench` on the same file in the same run, and fio (io_uring) gives
// the raw ceiling. Offsets follow qemu-img bench exactly: request k goes to
// (k * step) mod size, with a large odd step so they scatter over the image.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_options.h"
#include "bench/bench_peers.h"
#include "common/error.h"
#include "common/poll_window.h"
#include "common/unique_fd.h"
#include "storage/aligned_buffer.h"
#include "storage/disk.h"

namespace minivmm::storage {
namespace {

using Clock = std::chrono::steady_clock;
using bench::Case;
using bench::kBlock;
using bench::kStep;
using bench::Result;

using bench::Options;

// Keeps `depth` requests in flight until time runs out; with flush_every,
// drains and flushes after every N writes (what qemu-img bench does).
Result run_ours(const Options& o, CacheMode mode, const Case& c) {
  DiskOptions d;
  d.path = o.file;
  d.cache = mode;
  d.engine = o.engine;
  auto disk = Disk::open(d);
  AlignedBuffer buf(kBlock * c.depth, 4096);
  std::vector<iovec> slot_iov(c.depth);  // per slot: DiskRequest::iov is a view
  for (unsigned s = 0; s < c.depth; ++s) slot_iov[s] = {buf.data() + s * kBlock, kBlock};
  std::memset(buf.data(), 0x5a, buf.size());
  std::vector<double> lat;
  lat.reserve(1 << 20);
  uint64_t offset = 0, issued = 0, completed = 0, since_flush = 0;
  bool flushing = false;
  const auto start = Clock::now();
  const double cpu_start = bench::process_cpu_seconds();
  const auto deadline = start + std::chrono::duration<double>(o.seconds);
  bool stop = false;

  auto issue = [&](unsigned slot) {
    DiskRequest r;
    r.op = c.write ? RequestType::Write : RequestType::Read;
    r.offset = offset;
    r.iov = {&slot_iov[slot], 1};
    offset = (offset + kStep) % o.size;
    const auto t0 = Clock::now();
    r.done = [&, t0](int res) {
      if (res != 0) throw Error("bench request failed: " + std::string(std::strerror(-res)));
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      ++completed;
      ++since_flush;
    };
    disk->submit(std::move(r));
    ++issued;
  };
  for (unsigned s = 0; s < c.depth; ++s) issue(s);
  disk->kick();
  // Waits as the device's EventLoop does: polls the disk's completions for
  // up to the adaptive window, then sleeps on the completion fd.
  PollWindow window;
  while (disk->in_flight() > 0) {
    window.poll_then_sleep([&] { return disk->completions_ready(); },
                           [&] {
                             if (disk->completions_ready()) return;
                             pollfd p{disk->completion_fd(), POLLIN, 0};
                             ::poll(&p, 1, 1000);
                           });
    disk->process_completions();
    if (!stop && Clock::now() >= deadline) stop = true;
    if (stop || flushing) continue;
    if (c.flush_every && since_flush >= c.flush_every) {
      if (disk->in_flight() > 0) continue;  // drain first
      since_flush = 0;
      DiskRequest f;
      f.op = RequestType::Flush;
      flushing = true;
      f.done = [&](int res) {
        if (res != 0) throw Error("bench flush failed");
        flushing = false;
      };
      disk->submit(std::move(f));
      disk->kick();
      disk->drain();
    }
    // Refill the slots that completed.
    const uint64_t room = c.depth - std::min<uint64_t>(c.depth, disk->in_flight());
    const uint64_t n = c.flush_every ? std::min<uint64_t>(room, c.flush_every - since_flush) : room;
    for (uint64_t i = 0; i < n; ++i) issue(static_cast<unsigned>((issued) % c.depth));
    if (n) disk->kick();
  }
  Result r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.cpu_seconds = bench::process_cpu_seconds() - cpu_start;
  r.ops = completed;
  r.p50_us = bench::percentile(lat, 0.50);
  r.p99_us = bench::percentile(lat, 0.99);
  return r;
}

int run(int argc, char** argv) {
  const Options o = bench::parse_options(argc, argv, "/var/tmp/minivmm-storage-bench.img", false);
  spdlog::set_level(spdlog::level::warn);
  bench::create_image(o.file, o.size);
  const std::vector<Case> cases = bench::standard_cases(o.flush_every);
  std::printf(
      "file %s, %llu MiB, 4 KiB requests at (k * %llu) mod size, %.1f s per run, "
      "%u run(s) per program per row, alternating (medians shown)\n"
      "CPU us/IO: user + system time of the whole process (io_uring's workers included) "
      "per request\n\n",
      o.file.c_str(), static_cast<unsigned long long>(o.size >> 20),
      static_cast<unsigned long long>(kStep), o.seconds, o.rounds);
  bench::print_table_header(false);
  for (CacheMode mode : {CacheMode::Writeback, CacheMode::None, CacheMode::Writethrough,
                         CacheMode::Directsync, CacheMode::Unsafe}) {
    if (!o.only_mode.empty() && o.only_mode != to_string(mode)) continue;
    for (const Case& c : cases) {
      // Same starting page cache for both: the whole image cached and clean
      // (buffered modes start from a warm cache; O_DIRECT modes do not use it).
      const bench::Row row = bench::run_row(o.file, o.size, mode, c, o.rounds, o.peers,
                                            [&] { return run_ours(o, mode, c); });
      bench::print_row("minivmm " + std::string(to_string(mode)), c, row.ours, row.qemu);
    }
  }
  if (o.peers) {
    for (bool direct : {false, true}) {
      for (const Case& c : cases) {
        bench::print_row(direct ? "fio direct=1" : "fio buffered", c,
                         bench::run_fio(o.file, o.size, o.seconds, c, direct), std::nullopt);
      }
    }
  }
  ::unlink(o.file.c_str());
  return 0;
}

}  // namespace
}  // namespace minivmm::storage

int main(int argc, char** argv) {
  try {
    return minivmm::storage::run(argc, argv);
  } catch (const std::exception& e) {
    spdlog::error("storage_bench: {}", e.what());
    return 1;
  }
}
