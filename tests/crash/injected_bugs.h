// Deliberately broken storage layers, for proving that the power-loss checker
// catches real durability bugs. Each sits between the Disk and the
// WriteLogEngine (which logs what the host really does), so the log shows the
// consequence of the bug, not the bug's own story.
#pragma once

#include <memory>
#include <string_view>

#include "storage/io_engine.h"

namespace minivmm::storage::crash {

enum class InjectedBug {
  None,
  // Completes every fdatasync to the disk at once and hands the real one to
  // the host only afterwards: a flush that returns before the fdatasync.
  EarlyFlush,
  // Clears RWF_DSYNC on every write: write-through writes lose their
  // durability (the "forgot O_DSYNC" bug).
  DropDsync,
};

// Throws minivmm::Error for an unknown name; names: none, early-flush, drop-dsync.
InjectedBug parse_injected_bug(std::string_view name);

// `inner` unchanged for InjectedBug::None.
std::unique_ptr<IoEngine> inject_bug(InjectedBug bug, std::unique_ptr<IoEngine> inner);

}  // namespace minivmm::storage::crash
