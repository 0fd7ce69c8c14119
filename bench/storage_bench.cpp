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

#include "common/error.h"
#include "common/unique_fd.h"
#include "storage/aligned_buffer.h"
#include "storage/disk.h"

namespace minivmm::storage {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string file = "/var/tmp/minivmm-storage-bench.img";
  uint64_t size = 128ull << 20;
  double seconds = 0.5;
  unsigned flush_every = 16;
  bool peers = true;
  IoEngineKind engine = IoEngineKind::Auto;
  std::string only_mode;  // empty: all five
};

struct Case {
  const char* name;
  bool write;
  unsigned depth;
  unsigned flush_every;  // 0: no flushes
};

struct Result {
  uint64_t ops = 0;  // reads or writes (flushes not counted)
  double seconds = 0;
  double p50_us = 0, p99_us = 0;
  double iops() const { return seconds > 0 ? ops / seconds : 0; }
};

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kStep = kBlock * 7919;  // odd block count: visits every block

void create_image(const Options& o) {
  UniqueFd fd(::open(o.file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("create " + o.file);
  std::vector<uint8_t> chunk(1 << 20);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 31 + 7);
  for (uint64_t off = 0; off < o.size; off += chunk.size()) {
    if (::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) {
      throw sys_error("fill " + o.file);
    }
  }
  if (::fsync(fd.get()) != 0) throw sys_error("fsync " + o.file);
}

void warm_cache(const Options& o) {
  UniqueFd fd(::open(o.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open " + o.file);
  std::vector<uint8_t> chunk(1 << 20);
  for (uint64_t off = 0; off < o.size; off += chunk.size()) {
    if (::pread(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) {
      throw sys_error("read " + o.file);
    }
  }
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// Keeps `depth` requests in flight until time runs out; with flush_every,
// drains and flushes after every N writes (what qemu-img bench does).
Result run_ours(const Options& o, CacheMode mode, const Case& c) {
  DiskOptions d;
  d.path = o.file;
  d.cache = mode;
  d.engine = o.engine;
  auto disk = Disk::open(d);
  AlignedBuffer buf(kBlock * c.depth, 4096);
  std::memset(buf.data(), 0x5a, buf.size());
  std::vector<double> lat;
  lat.reserve(1 << 20);
  uint64_t offset = 0, issued = 0, completed = 0, since_flush = 0;
  bool flushing = false;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(o.seconds);
  bool stop = false;

  auto issue = [&](unsigned slot) {
    DiskRequest r;
    r.op = c.write ? DiskRequest::Op::Write : DiskRequest::Op::Read;
    r.offset = offset;
    r.iov = std::vector<iovec>{iovec{buf.data() + slot * kBlock, kBlock}};
    offset = (offset + kStep) % o.size;
    const auto t0 = Clock::now();
    r.done = [&, t0, slot](int res) {
      if (res != 0) throw Error("bench request failed: " + std::string(std::strerror(-res)));
      lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      ++completed;
      ++since_flush;
      (void)slot;
    };
    disk->submit(std::move(r));
    ++issued;
  };
  std::vector<unsigned> free_slots;
  for (unsigned s = 0; s < c.depth; ++s) issue(s);
  disk->kick();
  while (disk->in_flight() > 0) {
    pollfd p{disk->completion_fd(), POLLIN, 0};
    ::poll(&p, 1, 1000);
    const uint64_t before = completed;
    disk->process_completions();
    if (!stop && Clock::now() >= deadline) stop = true;
    if (stop || flushing) continue;
    if (c.flush_every && since_flush >= c.flush_every) {
      if (disk->in_flight() > 0) continue;  // drain first
      since_flush = 0;
      DiskRequest f;
      f.op = DiskRequest::Op::Flush;
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
    (void)before;
  }
  Result r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.ops = completed;
  r.p50_us = percentile(lat, 0.50);
  r.p99_us = percentile(lat, 0.99);
  return r;
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  ::pclose(f);
  return out;
}

// qemu-img bench -c N with our op count, same mode, depth, size and step.
std::optional<double> run_qemu(const Options& o, CacheMode mode, const Case& c, uint64_t count) {
  std::string cmd = "qemu-img bench -f raw -t " + std::string(to_string(mode)) +
                    " -i io_uring -c " + std::to_string(std::max<uint64_t>(count, 1)) + " -d " +
                    std::to_string(c.depth) + " -s 4096 -S " + std::to_string(kStep) +
                    (c.write ? " -w" : "") +
                    (c.flush_every ? " --flush-interval=" + std::to_string(c.flush_every) : "") +
                    " " + o.file + " 2>&1";
  const std::string out = capture(cmd);
  const auto at = out.find("Run completed in ");
  if (at == std::string::npos) {
    spdlog::warn("qemu-img bench gave no result: {}", out);
    return std::nullopt;
  }
  const double secs = std::stod(out.substr(at + 17));
  return secs > 0 ? std::optional<double>(count / secs) : std::nullopt;
}

double json_number_after(const std::string& s, size_t from, const std::string& key) {
  const auto k = s.find(key, from);
  if (k == std::string::npos) return 0;
  const auto colon = s.find(':', k + key.size());
  return std::stod(s.substr(colon + 1));
}

Result run_fio(const Options& o, const Case& c, bool direct) {
  std::string cmd = "fio --name=ceiling --filename=" + o.file +
                    " --ioengine=io_uring --bs=4k --rw=" + (c.write ? "randwrite" : "randread") +
                    " --iodepth=" + std::to_string(c.depth) + " --direct=" + (direct ? "1" : "0") +
                    " --runtime=" + std::to_string(o.seconds) + " --time_based --size=" +
                    std::to_string(o.size) +
                    (c.flush_every ? " --fdatasync=" + std::to_string(c.flush_every) : "") +
                    " --output-format=json 2>/dev/null";
  const std::string out = capture(cmd);
  Result r;
  const auto sect = out.find(c.write ? "\"write\" :" : "\"read\" :");
  if (sect == std::string::npos) return r;
  const auto clat = out.find("\"clat_ns\"", sect);
  r.seconds = 1;
  r.ops = static_cast<uint64_t>(json_number_after(out, sect, "\"iops\""));
  r.p50_us = json_number_after(out, clat, "\"50.000000\"") / 1000;
  r.p99_us = json_number_after(out, clat, "\"99.000000\"") / 1000;
  return r;
}

void print_row(const std::string& who, const Case& c, const Result& r,
               std::optional<double> qemu) {
  char line[256];
  std::snprintf(line, sizeof line, "| %-14s | %-18s | %9.0f | %9.1f | %9.1f | %11s | %7s |",
                who.c_str(), c.name, r.iops(), r.p50_us, r.p99_us,
                qemu ? std::to_string(static_cast<long>(*qemu)).c_str() : "-",
                qemu ? (std::to_string(r.iops() / *qemu).substr(0, 4) + "x").c_str() : "-");
  std::puts(line);
  std::fflush(stdout);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--file") o.file = next();
    else if (a == "--size-mib") o.size = std::stoull(next()) << 20;
    else if (a == "--seconds") o.seconds = std::stod(next());
    else if (a == "--flush-every") o.flush_every = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--no-peers") o.peers = false;
    else if (a == "--mode") o.only_mode = next();
    else if (a == "--engine") {
      const std::string e = next();
      o.engine = e == "sync" ? IoEngineKind::Sync : e == "uring" ? IoEngineKind::IoUring
                                                                 : IoEngineKind::Auto;
    }
    else throw Error("unknown option " + a +
                     " (use --file PATH --size-mib N --seconds S --flush-every N --no-peers --mode M --engine sync|uring)");
  }
  return o;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  create_image(o);
  const std::string flush_name = "write+flush/" + std::to_string(o.flush_every) + " QD1";
  const Case cases[] = {{"write QD1", true, 1, 0},
                        {"write QD32", true, 32, 0},
                        {"read QD1", false, 1, 0},
                        {"read QD32", false, 32, 0},
                        {flush_name.c_str(), true, 1, o.flush_every}};
  std::printf("file %s, %llu MiB, 4 KiB requests at (k * %llu) mod size, %.1f s per row\n\n",
              o.file.c_str(), static_cast<unsigned long long>(o.size >> 20),
              static_cast<unsigned long long>(kStep), o.seconds);
  std::puts("| who / mode     | test               |      IOPS |  p50 (us) |  p99 (us) | qemu-img IOPS | vs qemu |");
  std::puts("|----------------|--------------------|-----------|-----------|-----------|-------------|---------|");
  for (CacheMode mode : {CacheMode::Writeback, CacheMode::None, CacheMode::Writethrough,
                         CacheMode::Directsync, CacheMode::Unsafe}) {
    if (!o.only_mode.empty() && o.only_mode != to_string(mode)) continue;
    for (const Case& c : cases) {
      // Same starting page cache for both: the whole image cached (buffered
      // modes start from a warm cache; O_DIRECT modes do not use it).
      warm_cache(o);
      const Result r = run_ours(o, mode, c);
      warm_cache(o);
      const auto q = o.peers ? run_qemu(o, mode, c, r.ops) : std::nullopt;
      print_row("minivmm " + std::string(to_string(mode)), c, r, q);
    }
  }
  if (o.peers) {
    for (bool direct : {false, true}) {
      for (const Case& c : cases) {
        print_row(direct ? "fio direct=1" : "fio buffered", c, run_fio(o, c, direct), std::nullopt);
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
