// The durability window (DiskStats::at_risk_bytes / at_risk_requests):
// guest acknowledgements that were not durable when the guest saw them
// (write cache on, or a mode that ignores flushes) and are not yet covered
// by a completed fdatasync issued after them. Counts are cumulative, so what
// an fdatasync covers is just the mark taken when it is issued.
#pragma once

#include <algorithm>
#include <cstdint>

namespace minivmm::storage {

class DurabilityWindow {
 public:
  struct Mark {
    uint64_t bytes = 0;
    uint64_t requests = 0;
  };

  // A successful acknowledgement that was not durable joins the window.
  void note_ack(uint64_t bytes) {
    acked_.bytes += bytes;
    ++acked_.requests;
  }
  // What an fdatasync issued now covers: every at-risk ack so far.
  Mark mark() const { return acked_; }
  // A successful fdatasync removes what it covers. Syncs may complete out of
  // order: the window shrinks to the newest cover, never grows back.
  void note_sync_done(const Mark& covered) {
    durable_.bytes = std::max(durable_.bytes, covered.bytes);
    durable_.requests = std::max(durable_.requests, covered.requests);
  }
  uint64_t at_risk_bytes() const { return acked_.bytes - durable_.bytes; }
  uint64_t at_risk_requests() const { return acked_.requests - durable_.requests; }

 private:
  Mark acked_;    // at-risk acknowledgements so far
  Mark durable_;  // ... of those, covered by a completed fdatasync
};

}  // namespace minivmm::storage
