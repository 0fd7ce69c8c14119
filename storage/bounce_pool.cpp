#include "storage/bounce_pool.h"

#include <utility>

namespace minivmm::storage {

BouncePool::BouncePool(const Shape& shape)
    : capacity_(shape.capacity), buffer_bytes_(shape.buffer_bytes), alignment_(shape.alignment) {}

AlignedBuffer BouncePool::take() {
  if (!free_.empty()) {
    AlignedBuffer buffer = std::move(free_.back());
    free_.pop_back();
    ++taken_;
    return buffer;
  }
  if (allocated_ == capacity_) return AlignedBuffer();
  free_.reserve(capacity_);                         // once: give_back() never allocates
  AlignedBuffer buffer(buffer_bytes_, alignment_);  // throws on failure: nothing counted
  ++allocated_;
  ++taken_;
  return buffer;
}

void BouncePool::give_back(AlignedBuffer buffer) {
  if (!buffer.data()) return;
  --taken_;
  free_.push_back(std::move(buffer));
}

}  // namespace minivmm::storage
