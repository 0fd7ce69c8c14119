#include "devices/virtio_blk/make_virtio_blk.h"

#include "devices/virtio_blk/virtio_blk.h"

namespace minivmm::virtio::blk {

std::unique_ptr<VirtioMmioTransport> make_virtio_blk_mmio(GuestMemory mem,
                                                          std::unique_ptr<storage::Disk> disk,
                                                          VirtioBlkOptions options,
                                                          EventLoop& loop) {
  auto device = std::make_unique<VirtioBlk>(std::move(disk), std::move(options), loop);
  return std::make_unique<VirtioMmioTransport>(mem, std::move(device), loop);
}

}  // namespace minivmm::virtio::blk
