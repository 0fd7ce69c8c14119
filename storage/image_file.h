// Opening a disk image (raw file or host block device) and checking it before
// the guest starts: every problem becomes a minivmm::Error naming the path.
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.h"
#include "storage/image_format.h"

namespace minivmm::storage {

struct ImageFile {
  UniqueFd fd;
  uint64_t size_bytes = 0;
  uint32_t logical_block_size = 512;  // request offsets/lengths must be multiples
  uint32_t memory_alignment = 1;      // O_DIRECT buffer address alignment
  bool block_device = false;
};

// Opens `path` O_RDONLY or O_RDWR (plus O_DIRECT when `direct`), and takes an
// OFD lock on the whole image: shared for read-only, exclusive for read-write,
// so two VMMs can never have one image open read-write. Then checks its
// format (image_format.h) before its size, so that another format's file is
// named as such rather than as a raw image of an odd size.
ImageFile open_image_file(const std::string& path, bool read_only, bool direct, ImageFormat format);

}  // namespace minivmm::storage
