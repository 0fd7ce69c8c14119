// A whole file mapped read-only (RAII munmap): kernel and initrd images are
// read straight from the page cache instead of being copied twice.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.h"

namespace minivmm {

// Everything the boot path loads lies below 4 GiB (the boot page tables map
// the first 4 GiB; setup_header's initrd_addr_max is 32-bit), so a larger
// kernel or initrd could never load: refusing it up front spares reading it.
inline constexpr uint64_t kMaxMappedFileBytes = 4ull << 30;

class MappedFile {
 public:
  // Throws Error naming `what` and `path` if the file cannot be opened, is
  // not a regular file (open_regular_file), is empty, is larger than
  // kMaxMappedFileBytes, or cannot be mapped.
  MappedFile(const std::string& path, const std::string& what);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace minivmm
