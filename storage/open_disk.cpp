// Which Disk an image becomes: an ImageDisk, wrapped for write logging when
// DiskOptions::write_log is set. Its own unit so that neither ImageDisk nor
// the write-logging decorator has to include the other.
#include "storage/open_disk.h"

#include <spdlog/spdlog.h>

#include "storage/image_disk.h"
#include "storage/write_logged_disk.h"

namespace minivmm::storage {

namespace {

std::unique_ptr<Disk> make_image_disk(const DiskOptions& options, ImageFile image,
                                      std::unique_ptr<IoEngine> engine) {
  spdlog::info("storage: {} opened {} ({} bytes, block {} B, cache={}, engine={})", options.path,
               options.read_only ? "read-only" : "read-write", image.size_bytes,
               image.logical_block_size, to_string(options.cache), engine->name());
  if (!options.write_log.empty()) {
    return open_write_logged_disk(options, std::move(image), std::move(engine));
  }
  return std::make_unique<ImageDisk>(options, std::move(image), std::move(engine));
}

}  // namespace

std::unique_ptr<Disk> open_disk_with_engine(const DiskOptions& options,
                                            std::unique_ptr<IoEngine> engine) {
  ImageFile image = open_image_file(options.path, options.read_only, traits(options.cache).direct,
                                    options.format);
  return make_image_disk(options, std::move(image), std::move(engine));
}

std::unique_ptr<Disk> Disk::open(const DiskOptions& options) {
  // The image is checked before an engine is chosen, so image errors come first.
  ImageFile image = open_image_file(options.path, options.read_only, traits(options.cache).direct,
                                    options.format);
  return make_image_disk(options, std::move(image), make_io_engine(options.engine));
}

}  // namespace minivmm::storage
