// Guest physical memory as seen from the host: one contiguous region starting
// at guest physical address `base`, optionally with a hole that is not RAM
// (the 32-bit MMIO hole of a guest with RAM above 4 GiB; its host pages are
// PROT_NONE). Every access a device makes on behalf of the guest goes through
// `translate`, which refuses ranges outside the region or touching the hole,
// so hostile guest addresses can never reach other host memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace minivmm {

class GuestMemory {
 public:
  // Where the region lies, by name at every call site: four guest-physical
  // numbers in a row are too easy to pass in the wrong order.
  struct Layout {
    uint64_t base = 0;
    uint64_t size = 0;
    // [hole_start, hole_end): guest physical addresses inside the region
    // that are not RAM; empty by default.
    uint64_t hole_start = 0;
    uint64_t hole_end = 0;
  };

  GuestMemory() = default;
  GuestMemory(uint8_t* host, const Layout& layout)
      : host_(host),
        base_(layout.base),
        size_(layout.size),
        hole_start_(layout.hole_start),
        hole_end_(layout.hole_end) {}

  uint64_t base() const { return base_; }
  uint64_t size() const { return size_; }

  // Host pointer for [gpa, gpa+len), or nullptr when any byte is outside RAM.
  uint8_t* translate(uint64_t gpa, uint64_t len) const {
    if (gpa < base_) return nullptr;
    const uint64_t off = gpa - base_;
    if (off > size_ || len > size_ - off) return nullptr;
    if (gpa < hole_end_ && gpa + len > hole_start_) return nullptr;
    return host_ + off;
  }

  // Copy-out of a plain value; nullopt when out of range.
  template <typename T>
  std::optional<T> read(uint64_t gpa) const {
    const uint8_t* p = translate(gpa, sizeof(T));
    if (!p) return std::nullopt;
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }

  template <typename T>
  bool write(uint64_t gpa, const T& v) const {
    uint8_t* p = translate(gpa, sizeof(T));
    if (!p) return false;
    std::memcpy(p, &v, sizeof(T));
    return true;
  }

 private:
  uint8_t* host_ = nullptr;
  uint64_t base_ = 0;
  uint64_t size_ = 0;
  uint64_t hole_start_ = 0;  // empty hole: never matches
  uint64_t hole_end_ = 0;
};

}  // namespace minivmm
