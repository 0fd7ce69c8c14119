// Test helpers: image files on a disk-backed directory (O_DIRECT does not work
// on tmpfs), running one request to completion through the eventfd path, and
// reading the real open flags of the fd a Disk holds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/disk.h"
#include "tests/storage/tracing_engine.h"

namespace minivmm::storage::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Creates `path` of `size` bytes, byte i = (i * 7 + seed) & 0xff.
void make_image(const std::string& path, uint64_t size, uint8_t seed = 1);
std::vector<uint8_t> read_file(const std::string& path, uint64_t offset, uint64_t len);
uint8_t pattern_byte(uint64_t i, uint8_t seed = 1);

// What Disk::open(options) throws (its what()), or "(no error)" when it opens.
std::string open_error(const DiskOptions& options);

// The fd this process holds on `path` (newest), or -1; and its open flags
// from /proc/self/fdinfo.
int find_fd_for(const std::string& path);
unsigned long fdinfo_flags(int fd);

// Kernel-side proof of durability, independent of our bookkeeping:
// cachestat(2) (Linux 6.5) counts dirty + writeback page-cache pages of the
// whole file behind `fd`; nullopt where the syscall is unavailable.
std::optional<uint64_t> dirty_or_writeback_pages(int fd);

// Submits, kicks, waits for completion_fd with poll() and processes
// completions until the callback ran; returns its result.
int run_request(Disk& disk, DiskRequest request);
int run_read(Disk& disk, uint64_t offset, void* buf, size_t len);
int run_write(Disk& disk, uint64_t offset, const void* buf, size_t len);
int run_flush(Disk& disk);

// A Disk over a TracingEngine wrapping the engine of `kind`.
std::unique_ptr<Disk> open_traced(const DiskOptions& options, IoEngineKind kind,
                                  std::shared_ptr<IoTrace> trace);

// True when io_uring can be set up here (else tests of it are skipped).
bool uring_available();

}  // namespace minivmm::storage::test
