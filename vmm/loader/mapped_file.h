// A whole file mapped read-only (RAII munmap): kernel and initrd images are
// read straight from the page cache instead of being copied twice.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.h"

namespace minivmm {

class MappedFile {
 public:
  // Throws Error naming `what` and `path` if the file cannot be mapped, is
  // not a regular file, or is empty.
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
