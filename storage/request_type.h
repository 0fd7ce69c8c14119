// What a request asks of the disk: the one operation enum shared by the
// virtio-blk device (which maps the virtio header type onto it once, in
// blk_request.cpp) and the storage layer.
#pragma once

namespace minivmm::storage {

enum class RequestType {
  Read,
  Write,
  Flush,
  Discard,
  WriteZeroes,
};

}  // namespace minivmm::storage
