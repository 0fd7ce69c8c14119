#include "devices/virtio_blk/host_flush.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "devices/virtio_blk/virtio_blk.h"

namespace minivmm::virtio::blk {

namespace {

// Shared by the waiting thread and the loop task, either of which may be
// the last to hold it. Built (reports included) on the waiting thread, so
// the loop thread allocates nothing for it.
struct FlushTask {
  explicit FlushTask(std::vector<VirtioBlk*> d) : devices(std::move(d)), reports(devices.size()) {}
  std::vector<VirtioBlk*> devices;
  std::mutex mutex;
  std::condition_variable ended_cv;
  bool ended = false;                    // guarded by mutex
  std::vector<DiskFlushReport> reports;  // written by the loop task before `ended`
};

void run_on_loop(FlushTask& task) {
  for (VirtioBlk* d : task.devices) d->stop_intake();
  // Every disk drained and flushed before any takes requests again: the
  // answer describes one moment for all of them.
  for (size_t i = 0; i < task.devices.size(); ++i)
    task.reports[i] = task.devices[i]->flush_to_host();
  for (VirtioBlk* d : task.devices) d->resume_intake();
  const std::lock_guard lock(task.mutex);
  task.ended = true;
  task.ended_cv.notify_all();
}

}  // namespace

std::optional<std::vector<DiskFlushReport>> flush_disks(EventLoop& loop,
                                                        std::vector<VirtioBlk*> devices,
                                                        std::chrono::milliseconds timeout) {
  auto task = std::make_shared<FlushTask>(std::move(devices));
  loop.post([task] { run_on_loop(*task); });
  std::unique_lock lock(task->mutex);
  if (!task->ended_cv.wait_for(lock, timeout, [&task] { return task->ended; })) {
    return std::nullopt;
  }
  return task->reports;
}

}  // namespace minivmm::virtio::blk
