// Opening a Disk over a caller-chosen IoEngine: the seam tests use (with a
// TracingEngine, tests/storage/tracing_engine.h) to see exactly which writes, flushes and
// durability flags reach the kernel. Disk::open() is this with make_io_engine(options.engine). With
// options.write_log set, `engine` is wrapped in a WriteLogEngine (it is taken to be the host) and
// the disk in a guest-level logger (write_logged_disk.h).
#pragma once

#include <memory>

#include "storage/disk.h"
#include "storage/io_engine.h"

namespace minivmm::storage {

std::unique_ptr<Disk> open_disk_with_engine(const DiskOptions& options,
                                            std::unique_ptr<IoEngine> engine);

}  // namespace minivmm::storage
