// Write logging for a whole Disk (DiskOptions::write_log): guest-level events
// (requests submitted, completions the guest is told about, write-cache
// switches) are logged by a Disk decorator, host-level events by a
// WriteLogEngine under the disk, both into one WriteLog in event order.
//
// Reads are not logged: they change nothing a power cut could lose.
#pragma once

#include <memory>

#include "storage/disk.h"
#include "storage/image_file.h"
#include "storage/io_engine.h"
#include "storage/write_log.h"

namespace minivmm::storage {

// Wraps `inner` so its guest-level events go to `log`. The log must also get
// the host-level events, from a WriteLogEngine under `inner`.
std::unique_ptr<Disk> make_write_logged_disk(std::shared_ptr<WriteLog> log,
                                             std::unique_ptr<Disk> inner);

// What Disk::open / open_disk_with_engine do when options.write_log is set:
// creates the log, puts a WriteLogEngine over `engine` and the guest-level
// decorator over the disk.
std::unique_ptr<Disk> open_write_logged_disk(const DiskOptions& options, ImageFile image,
                                             std::unique_ptr<IoEngine> engine);

}  // namespace minivmm::storage
