#include "storage/request_checks.h"

#include <cerrno>

namespace minivmm::storage {

Refusal check_range(RequestType type, uint64_t offset, uint64_t length, const ImageLimits& limits) {
  const bool modifies = type == RequestType::Write || type == RequestType::Discard ||
                        type == RequestType::WriteZeroes;
  if (modifies && limits.read_only) return {-EROFS, "modifies a read-only disk"};
  if (type == RequestType::Flush) return {};
  if (offset % limits.block_size != 0 || length % limits.block_size != 0) {
    return {-EINVAL, "not aligned to the logical block size"};
  }
  // Written so that offset + length can never wrap.
  if (offset > limits.size_bytes || length > limits.size_bytes - offset) {
    return {-EINVAL, "beyond the end of the disk"};
  }
  return {};
}

uint64_t request_length(const DiskRequest& request, bool& overflow) {
  overflow = false;
  switch (request.op) {
    case RequestType::Read:
    case RequestType::Write: {
      uint64_t total = 0;
      for (const iovec& v : request.iov) {
        if (__builtin_add_overflow(total, v.iov_len, &total)) overflow = true;
      }
      return total;
    }
    case RequestType::Discard:
    case RequestType::WriteZeroes: return request.length;
    case RequestType::Flush: return 0;
  }
  return 0;
}

int check_request(const DiskRequest& request, const ImageLimits& limits) {
  bool overflow = false;
  const uint64_t length = request_length(request, overflow);
  const Refusal refusal = check_range(request.op, request.offset, length, limits);
  if (refusal) return refusal.error;
  return overflow ? -EINVAL : 0;
}

}  // namespace minivmm::storage
