// A FIFO of operations waiting for an engine (prepared, or to resubmit):
// pointers to the callers' IoOps in a vector consumed from a head index, so
// operations coming and going allocate nothing once it has grown to the
// most ever waiting.
#pragma once

#include <cstddef>
#include <vector>

#include "storage/io_op.h"

namespace minivmm::storage {

class OpQueue {
 public:
  bool empty() const { return head_ == ops_.size(); }
  IoOp& front() const { return *ops_[head_]; }
  void pop_front() { ++head_; }
  void push_back(IoOp& op) {
    if (head_ > 0 && empty()) {
      ops_.clear();
      head_ = 0;
    } else if (head_ > kCompactAfter && head_ * 2 > ops_.size()) {
      ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    ops_.push_back(&op);
  }

 private:
  // Consumed entries are dropped once they are this many and more than half.
  static constexpr size_t kCompactAfter = 64;
  std::vector<IoOp*> ops_;
  size_t head_ = 0;
};

}  // namespace minivmm::storage
