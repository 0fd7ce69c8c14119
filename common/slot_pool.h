// Reusable per-request records, by id. ImageDisk keeps one record per
// request in flight (VirtioBlk indexes its slots by descriptor head instead;
// the engines keep none: they work on the IoOp inside ImageDisk's record).
// A pool hands out ids (index + 1, so 0 is never valid and can tag something
// else) and reuses the records, so nothing is allocated per request once the
// pool has grown to the largest number in flight. Records live behind
// unique_ptr: a reference stays valid while the pool grows. A released
// record keeps its state (and capacity); the owner resets what it must.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace minivmm {

template <typename T>
class SlotPool {
 public:
  // A free record's id (growing the pool when none is free).
  uint64_t take() {
    if (free_.empty()) {
      free_.push_back(static_cast<uint32_t>(records_.size()));
      records_.push_back(std::make_unique<T>());
      live_.push_back(false);
    }
    const uint32_t index = free_.back();
    free_.pop_back();
    live_[index] = true;
    ++live_count_;
    return uint64_t{index} + 1;
  }

  // The live record `id` names, or nullptr (unknown, or released).
  T* find(uint64_t id) {
    if (id == 0 || id > records_.size() || !live_[id - 1]) return nullptr;
    return records_[id - 1].get();
  }
  // `id` must be live.
  T& operator[](uint64_t id) { return *records_[id - 1]; }

  void release(uint64_t id) {
    live_[id - 1] = false;
    free_.push_back(static_cast<uint32_t>(id - 1));
    --live_count_;
  }
  // Forgets a live record without making it reusable (its memory may still
  // be in the kernel's hands); it stays allocated until the pool goes.
  void abandon(uint64_t id) {
    live_[id - 1] = false;
    --live_count_;
  }

  size_t live() const { return live_count_; }
  uint64_t end_id() const { return records_.size() + 1; }  // ids are 1 .. end_id() - 1

 private:
  std::vector<std::unique_ptr<T>> records_;  // by id - 1
  std::vector<bool> live_;
  std::vector<uint32_t> free_;
  size_t live_count_ = 0;
};

}  // namespace minivmm
