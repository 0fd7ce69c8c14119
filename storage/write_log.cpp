#include "storage/write_log.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "storage/iov_cursor.h"

namespace minivmm::storage {

WriteLogCacheMode to_write_log_mode(CacheMode mode) {
  switch (mode) {
    case CacheMode::Writeback: return WriteLogCacheMode::Writeback;
    case CacheMode::None: return WriteLogCacheMode::None;
    case CacheMode::Writethrough: return WriteLogCacheMode::Writethrough;
    case CacheMode::Directsync: return WriteLogCacheMode::Directsync;
    case CacheMode::Unsafe: return WriteLogCacheMode::Unsafe;
  }
  return WriteLogCacheMode::Writeback;
}

std::shared_ptr<WriteLog> WriteLog::create(const std::string& log_path,
                                           const WriteLogImage& image) {
  UniqueFd fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) throw sys_error("write log " + log_path + ": cannot create");
  WriteLogFileHeader h{};
  std::memcpy(h.magic, kWriteLogMagic, sizeof h.magic);
  h.version = kWriteLogVersion;
  h.block_size = image.logical_block_size;
  h.image_size = image.size_bytes;
  h.cache_mode = static_cast<uint32_t>(to_write_log_mode(image.cache));
  h.write_cache = traits(image.cache).write_cache ? 1 : 0;
  h.direct = traits(image.cache).direct ? 1 : 0;
  h.image_path_len = static_cast<uint32_t>(image.path.size());
  auto log = std::make_shared<WriteLog>(log_path, std::move(fd));
  const iovec parts[] = {{&h, sizeof h}, {const_cast<char*>(image.path.data()), image.path.size()}};
  log->write_all(parts);
  return log;
}

void WriteLog::append(WriteLogRecord record, std::span<const iovec> data) {
  if (!data.empty()) {
    record.flags |= kWriteLogHasData;
    record.length = iov_total(data);
  }
  if (data.size() < IOV_MAX) {
    // One writev per record: a kill can cut the log only at the tail.
    iovec parts[IOV_MAX];
    parts[0] = {&record, sizeof record};
    std::copy(data.begin(), data.end(), parts + 1);
    write_all(std::span<const iovec>(parts, data.size() + 1));
    return;
  }
  std::vector<uint8_t> flat(sizeof record + record.length);
  std::memcpy(flat.data(), &record, sizeof record);
  copy_from_iov(data, flat.data() + sizeof record, record.length);
  const iovec one{flat.data(), flat.size()};
  write_all(std::span<const iovec>(&one, 1));
}

void WriteLog::write_all(std::span<const iovec> parts) {
  IovCursor cursor(parts, 0);
  while (!cursor.done()) {
    const ssize_t n = ::writev(fd_.get(), cursor.data(), cursor.count());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw sys_error("write log " + path_ + ": append failed", n < 0 ? errno : EIO);
    cursor.advance(static_cast<uint64_t>(n));
  }
}

}  // namespace minivmm::storage
