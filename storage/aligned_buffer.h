// A heap buffer with a fixed start alignment, for O_DIRECT bounce buffers
// (O_DIRECT needs buffer addresses aligned to the device's DMA alignment).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

namespace minivmm::storage {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Zero-filled; throws minivmm::Error when the allocation fails.
  AlignedBuffer(size_t size, size_t alignment);

  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, FreeDeleter> data_;
  size_t size_ = 0;
};

}  // namespace minivmm::storage
