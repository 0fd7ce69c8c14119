#include "storage/aligned_buffer.h"

#include <cstring>
#include <string>

#include "common/error.h"

namespace minivmm::storage {

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) : size_(size) {
  void* p = nullptr;
  const int err = posix_memalign(&p, alignment, size == 0 ? alignment : size);
  if (err != 0) {
    throw sys_error("posix_memalign(" + std::to_string(size) + " bytes, align " +
                        std::to_string(alignment) + ") for a bounce buffer",
                    err);
  }
  std::memset(p, 0, size);
  data_.reset(static_cast<uint8_t*>(p));
}

}  // namespace minivmm::storage
