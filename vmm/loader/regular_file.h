// Opening a file minivmm reads whole (config, kernel, initrd) so that a
// wrong path fails at once with a clear message instead of hanging or
// reading without end: open(2) of a FIFO blocks until a writer comes
// (fifo(7)), a character device such as /dev/zero never ends, and a
// directory reads as nothing.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "common/unique_fd.h"

namespace minivmm {

struct RegularFile {
  UniqueFd fd;  // read-only
  uint64_t size = 0;
};

// "a directory", "a FIFO", "a character device", ... for messages.
std::string file_type_name(mode_t mode);

// Opens `path` read-only. Throws Error naming `what` and `path` if it cannot
// be opened, is not a regular file ("kernel '/k' is a FIFO, not a regular
// file") or is larger than `max_bytes`. A non-regular file is never opened:
// stat(2) first, and the open is O_NONBLOCK in case the path changed.
RegularFile open_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes);

}  // namespace minivmm
