// The sticky sync error: after a failed fdatasync the host may have dropped
// written data, and Linux reports a writeback error once, then may report
// success. So the first failure sticks: every later flush and durable write
// on the disk fails with it until restart (QEMU does the same).
#pragma once

#include <cstdint>

namespace minivmm::storage {

class StickySyncError {
 public:
  // Records a sync's result; true when it is the first failure (the caller
  // logs it once).
  bool note(int64_t result) {
    if (result >= 0 || error_ != 0) return false;
    error_ = static_cast<int>(result);
    return true;
  }
  // The first failed sync's -errno, 0 if none.
  int error() const { return error_; }

 private:
  int error_ = 0;
};

}  // namespace minivmm::storage
