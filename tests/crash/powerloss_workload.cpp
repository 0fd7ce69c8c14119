// Drives a real storage Disk with write logging on through a mixed guest-like
// workload (batches of concurrent writes, some overlapping, write-zeroes,
// discards, flushes, write-cache switches), so powerloss_check.py can check
// the cache mode's promise against the log. No guest needed.
//
// usage: powerloss_workload --image P --base P --log P --mode M
//          [--engine sync|io_uring] [--bug none|early-flush|drop-dsync]
//          [--seed N] [--rounds N] [--max-batch N] [--toggle-wce]
// Writes a fresh random image to --image and a copy of it to --base.
#include <poll.h>

#include <charconv>
#include <cstdio>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/error.h"
#include "injected_bugs.h"
#include "storage/open_disk.h"
#include "storage/write_log_engine.h"
#include "storage/write_logged_disk.h"

namespace minivmm::storage::crash {
namespace {

constexpr uint64_t kImageSize = 1 << 20;
constexpr uint64_t kSector = 512;

struct Args {
  std::string image, base, log;
  CacheMode mode = CacheMode::Writeback;
  IoEngineKind engine = IoEngineKind::Sync;
  InjectedBug bug = InjectedBug::None;
  uint64_t seed = 1;
  unsigned rounds = 60;
  unsigned max_batch = 6;
  bool toggle_wce = false;
};

unsigned to_number(const std::string& flag, const std::string& text) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size())
    throw Error(flag + ": bad number " + text);
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--image") a.image = value();
    else if (flag == "--base") a.base = value();
    else if (flag == "--log") a.log = value();
    else if (flag == "--mode") {
      const std::string m = value();
      auto mode = parse_cache_mode(m);
      if (!mode) throw Error("--mode: unknown cache mode " + m);
      a.mode = *mode;
    } else if (flag == "--engine") {
      const std::string e = value();
      if (e == "sync") a.engine = IoEngineKind::Sync;
      else if (e == "io_uring") a.engine = IoEngineKind::IoUring;
      else throw Error("--engine: sync or io_uring, not " + e);
    } else if (flag == "--bug") a.bug = parse_injected_bug(value());
    else if (flag == "--seed") a.seed = to_number(flag, value());
    else if (flag == "--rounds") a.rounds = to_number(flag, value());
    else if (flag == "--max-batch") a.max_batch = std::max(1u, to_number(flag, value()));
    else if (flag == "--toggle-wce") a.toggle_wce = true;
    else throw Error("unknown option " + flag);
  }
  if (a.image.empty() || a.base.empty() || a.log.empty())
    throw Error("--image, --base and --log are required");
  return a;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error("cannot write " + path);
}

std::unique_ptr<Disk> open_logged(const Args& a) {
  DiskOptions o;
  o.path = a.image;
  o.cache = a.mode;
  o.engine = a.engine;
  if (a.bug == InjectedBug::None) {
    o.write_log = a.log;  // the production path: Disk::open wires the log
    return Disk::open(o);
  }
  // The bug sits between the disk and the logging engine, so the log records
  // what the host really did.
  auto log = WriteLog::create(a.log, {a.image, kImageSize, 512, a.mode});
  auto host = std::make_unique<WriteLogEngine>(log, make_io_engine(a.engine));
  auto disk = open_disk_with_engine(o, inject_bug(a.bug, std::move(host)));
  return make_write_logged_disk(std::move(log), std::move(disk));
}

class Workload {
 public:
  Workload(Disk& disk, const Args& a) : disk_(disk), args_(a), rng_(a.seed) {}

  void run() {
    for (unsigned round = 0; round < args_.rounds; ++round) {
      if (args_.toggle_wce && pick(10) == 0) disk_.set_write_cache(!disk_.write_cache_enabled());
      batch();
      if (pick(3) == 0) {
        submit_flush();
        wait_all();
      }
    }
    spdlog::info("workload: {} writes, {} write-zeroes, {} discards, {} flushes ({} failed)",
                 writes_, zeroes_, discards_, flushes_, failed_);
  }
  unsigned failed() const { return failed_; }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  // A batch of concurrent requests, like one virtqueue notify; sometimes a
  // flush rides along, in flight together with the writes it must not cover.
  void batch() {
    const unsigned n = 1 + static_cast<unsigned>(pick(args_.max_batch));
    uint64_t last_offset = 0;
    for (unsigned i = 0; i < n; ++i) {
      const uint64_t sectors = 1 + pick(16);
      uint64_t offset = pick(kImageSize / kSector - sectors) * kSector;
      if (i > 0 && pick(4) == 0) offset = last_offset;  // overlapping, in flight together
      last_offset = offset;
      const uint64_t kind = pick(20);
      if (kind == 0) submit_range(RequestType::Discard, offset, sectors * kSector);
      else if (kind == 1) submit_range(RequestType::WriteZeroes, offset, sectors * kSector);
      else submit_write(offset, sectors * kSector);
    }
    if (args_.max_batch > 1 && pick(6) == 0) submit_flush();
    wait_all();
  }

  void submit_write(uint64_t offset, uint64_t len) {
    auto& buf = buffers_.emplace_back(len);
    for (auto& b : buf) b = static_cast<uint8_t>(rng_());
    DiskRequest r;
    r.op = RequestType::Write;
    r.offset = offset;
    // DiskRequest::iov is a view: the iovec lives until the batch is done.
    r.iov = {&iovecs_.emplace_back(iovec{buf.data(), buf.size()}), 1};
    submit(std::move(r));
    ++writes_;
  }
  void submit_range(RequestType op, uint64_t offset, uint64_t len) {
    DiskRequest r;
    r.op = op;
    r.offset = offset;
    r.length = len;
    r.unmap = pick(2) == 0;
    submit(std::move(r));
    ++(op == RequestType::Discard ? discards_ : zeroes_);
  }
  void submit_flush() {
    DiskRequest r;
    r.op = RequestType::Flush;
    submit(std::move(r));
    ++flushes_;
  }
  void submit(DiskRequest r) {
    ++pending_;
    r.done = [this](int result) {
      --pending_;
      if (result != 0) ++failed_;
    };
    disk_.submit(std::move(r));
  }

  void wait_all() {
    disk_.kick();
    while (pending_ > 0) {
      pollfd p{disk_.completion_fd(), POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) throw Error("workload: no completion within 10 s");
      disk_.process_completions();
    }
    buffers_.clear();
    iovecs_.clear();
  }

  Disk& disk_;
  const Args& args_;
  std::mt19937_64 rng_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::deque<iovec> iovecs_;  // stable addresses for the requests' views
  unsigned pending_ = 0, failed_ = 0;
  unsigned writes_ = 0, zeroes_ = 0, discards_ = 0, flushes_ = 0;
};

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  std::vector<uint8_t> base(kImageSize);
  std::mt19937_64 fill(a.seed ^ 0x5eed);
  for (auto& b : base) b = static_cast<uint8_t>(fill());
  write_file(a.image, base);
  write_file(a.base, base);
  unsigned failed = 0;
  {
    auto disk = open_logged(a);
    Workload w(*disk, a);
    w.run();
    failed = w.failed();
  }
  if (failed > 0) {
    spdlog::error("workload: {} requests failed", failed);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace minivmm::storage::crash

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  try {
    return minivmm::storage::crash::run(argc, argv);
  } catch (const std::exception& e) {
    spdlog::error("powerloss_workload: {}", e.what());
    return 2;
  }
}
