// On-disk format of a storage write log (power-loss simulation, in the spirit
// of Linux's dm-log-writes). Little-endian, append-only:
//
//   WriteLogFileHeader, then `image_path_len` bytes of the image path,
//   then WriteLogRecord entries in the order the events happened, each
//   followed by `length` bytes of data when it has kWriteLogHasData.
//
// Host records describe what reached the kernel for the image (written at the
// engine seam, below every other storage layer); guest records describe what
// the Disk's user (the virtio-blk device, i.e. the guest) asked for and was
// told. tests/framework/powerloss_check.py reads this format; keep them in step.
#pragma once

#include <cstdint>
#include <type_traits>

namespace minivmm::storage {

inline constexpr char kWriteLogMagic[8] = {'M', 'V', 'M', 'W', 'L', 'O', 'G', '1'};
inline constexpr uint32_t kWriteLogVersion = 1;

struct WriteLogFileHeader {
  char magic[8];
  uint32_t version;
  uint32_t block_size;   // logical block size of the image
  uint64_t image_size;   // bytes
  uint32_t cache_mode;   // WriteLogCacheMode
  uint32_t write_cache;  // guest-visible write cache at open (1 = write-back)
  uint32_t direct;       // image opened O_DIRECT
  uint32_t image_path_len;
};
static_assert(sizeof(WriteLogFileHeader) == 40 && std::is_trivially_copyable_v<WriteLogFileHeader>);

// Stable numbers for the five modes (independent of the C++ enum's order).
enum class WriteLogCacheMode : uint32_t {
  Writeback = 0,
  None = 1,
  Writethrough = 2,
  Directsync = 3,
  Unsafe = 4,
};

enum class WriteLogType : uint32_t {
  // Host level. id = the engine tag (one per in-flight operation).
  HostWriteIssued = 1,   // offset, length, kWriteLogDsync, data
  HostWriteDone = 2,     // value = result (bytes or -errno)
  HostFlushIssued = 3,   // fdatasync handed to the engine
  HostFlushDone = 4,     // value = result; 0 means the fdatasync completed
  HostFallocIssued = 5,  // offset, length, value = FALLOC_FL_* mode
  HostFallocDone = 6,    // value = result
  // Guest level. id = guest request number (from 1, reads are not logged).
  GuestSubmit = 16,         // value = WriteLogGuestOp, offset, length, data (writes)
  GuestComplete = 17,       // the guest is told a write/discard/zeroes finished; value = status
  GuestFlushComplete = 18,  // the guest is told a flush finished; value = status
  SetWriteCache = 19,       // guest-visible write cache switched; value = 1 write-back
};

enum class WriteLogGuestOp : int64_t { Write = 1, Flush = 2, Discard = 3, WriteZeroes = 4 };

inline constexpr uint32_t kWriteLogDsync = 1u << 0;    // HostWriteIssued: RWF_DSYNC
inline constexpr uint32_t kWriteLogHasData = 1u << 1;  // `length` data bytes follow
inline constexpr uint32_t kWriteLogUnmap = 1u << 2;    // GuestSubmit WriteZeroes: may unmap

struct WriteLogRecord {
  uint32_t type;  // WriteLogType
  uint32_t flags;
  uint64_t id;
  uint64_t offset;
  uint64_t length;
  int64_t value;
};
static_assert(sizeof(WriteLogRecord) == 40 && std::is_trivially_copyable_v<WriteLogRecord>);

}  // namespace minivmm::storage
