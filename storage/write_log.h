// The writer side of a storage write log (format: write_log_format.h).
//
// Every record goes to the kernel with one write(2)/writev(2) as soon as it is
// appended, with no user-space buffering: the log must describe a run that
// ended in SIGKILL too, and the host page cache survives a process kill. The
// log is never fsynced; it is a simulation aid for clean exits and process
// kills, not itself power-loss proof.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/unique_fd.h"
#include "storage/cache_mode.h"
#include "storage/write_log_format.h"

namespace minivmm::storage {

struct WriteLogImage {
  std::string path;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;
  CacheMode cache = CacheMode::Writeback;
};

class WriteLog {
 public:
  // Creates (truncates) `log_path` and writes the file header; throws
  // minivmm::Error naming the path on failure.
  static std::shared_ptr<WriteLog> create(const std::string& log_path, const WriteLogImage& image);

  // Appends one record and, when `data` is not empty, its bytes (the record's
  // length must equal their total). Throws minivmm::Error when the log cannot
  // be written: a silently truncated log would hide events from the checker.
  void append(WriteLogRecord record, std::span<const iovec> data = {});
  const std::string& path() const { return path_; }

  // Use create(); this takes an fd already positioned after the header.
  WriteLog(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

 private:
  void write_all(std::span<const iovec> parts);

  std::string path_;
  UniqueFd fd_;
};

WriteLogCacheMode to_write_log_mode(CacheMode mode);

}  // namespace minivmm::storage
