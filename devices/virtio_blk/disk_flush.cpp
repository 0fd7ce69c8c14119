#include "devices/virtio_blk/disk_flush.h"

namespace minivmm::virtio::blk {

int drain_and_flush(storage::Disk& disk, bool host_sync) {
  disk.drain();
  if (disk.read_only()) return 0;
  storage::DiskRequest flush;
  flush.op = storage::RequestType::Flush;
  flush.host_sync = host_sync;
  int result = 0;
  flush.done = [&result](int r) { result = r; };
  disk.submit(std::move(flush));
  disk.kick();
  disk.drain();
  return result;
}

}  // namespace minivmm::virtio::blk
