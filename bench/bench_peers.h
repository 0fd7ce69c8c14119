// What every storage benchmark here shares: the test file, the request
// pattern, the peers run on the same file in the same invocation
// (`qemu-img bench` and fio's io_uring ceiling) and the result table.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "storage/cache_mode.h"

namespace minivmm::bench {

inline constexpr uint64_t kBlock = 4096;
// qemu-img bench cannot do random offsets: request k goes to
// (k * step) mod size. An odd block count visits every block before repeating.
inline constexpr uint64_t kStep = kBlock * 7919;

struct Case {
  std::string name;
  bool write;
  unsigned depth;
  unsigned flush_every;  // 0: no flushes
};

// The five cases of every table: 4 KiB writes and reads at QD1 and QD32,
// QD1 writes with a flush after every `flush_every`.
std::vector<Case> standard_cases(unsigned flush_every);

struct Result {
  uint64_t ops = 0;  // reads or writes (flushes not counted)
  double seconds = 0;
  double p50_us = 0, p99_us = 0;
  // CPU time (user + system) the program under test spent on the row; 0
  // where not measured. Where both programs wait on the same disk, IOPS tie
  // and this is what tells them apart.
  double cpu_seconds = 0;
  double iops() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
  double cpu_us_per_io() const {
    return ops > 0 ? cpu_seconds * 1e6 / static_cast<double>(ops) : 0;
  }
};

// p in [0, 1]; reorders `v`.
double percentile(std::vector<double>& v, double p);

// Creates `file` of `size` bytes of a fixed pattern, fsynced.
void create_image(const std::string& file, uint64_t size);
// Writes back the file's dirty pages, then reads the whole file once, so
// every row starts from the same page cache: all of it cached, none of it
// dirty (a peer's buffered writes would otherwise be flushed during the next
// program's row and be counted against it).
void warm_cache(const std::string& file, uint64_t size);

// CPU seconds (user + system) used so far by this process, every thread and
// io_uring's workers (threads of the process) included. Other threads still
// running are counted up to a scheduler tick late: rows need to be long
// (0.5 s and up) for a CPU figure to mean anything.
double process_cpu_seconds();
// The same for the calling thread alone.
double thread_cpu_seconds();

// qemu-img bench -f raw -t <mode> -i io_uring with `count` requests of the
// same depth, size, step and flush interval, or nullopt on failure. Its CPU
// time is the child's (getrusage RUSAGE_CHILDREN), start-up included.
std::optional<Result> run_qemu_img(const std::string& file, storage::CacheMode mode, const Case& c,
                                   uint64_t count);
// fio --ioengine=io_uring, truly random offsets: the raw ceiling.
Result run_fio(const std::string& file, uint64_t size, double seconds, const Case& c, bool direct);

// One table row: each program's median run (by IOPS; the lower middle one
// for an even count), of `rounds` runs alternating minivmm, qemu-img,
// minivmm, ..., each from the same page cache (warm_cache). qemu-img is
// given as many requests as minivmm's run completed; no peers: nullopt.
struct Row {
  Result ours;
  std::optional<Result> qemu;
};
Row run_row(const std::string& file, uint64_t size, storage::CacheMode mode, const Case& c,
            unsigned rounds, bool peers, const std::function<Result()>& run_ours);

// The table: header once, then one row per result.
void print_table_header(bool with_fio_column);
void print_row(const std::string& who, const Case& c, const Result& r,
               const std::optional<Result>& qemu, std::optional<double> fio_iops = std::nullopt,
               bool with_fio_column = false);

}  // namespace minivmm::bench
