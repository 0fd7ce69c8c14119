// Anonymous host mapping that backs guest RAM (RAII munmap).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/guest_memory.h"

namespace minivmm {

class GuestRam {
 public:
  explicit GuestRam(uint64_t size);
  ~GuestRam();
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  GuestMemory view() const { return GuestMemory(data_, 0, size_); }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace minivmm
