#include "storage/request_checks.h"

#include <cerrno>

namespace minivmm::storage {

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
  const bool modifies = request.op == RequestType::Write ||
                        request.op == RequestType::Discard ||
                        request.op == RequestType::WriteZeroes;
  if (modifies && limits.read_only) return -EROFS;
  if (request.op == RequestType::Flush) return 0;

  bool overflow = false;
  const uint64_t length = request_length(request, overflow);
  if (overflow) return -EINVAL;
  if (request.offset % limits.block_size != 0 || length % limits.block_size != 0) return -EINVAL;
  // Written so that offset + length can never wrap.
  if (request.offset > limits.size_bytes || length > limits.size_bytes - request.offset) {
    return -EINVAL;
  }
  return 0;
}

}  // namespace minivmm::storage
