// Parameters shared by the per-mode, per-engine test suites.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "storage/cache_mode.h"
#include "storage/disk.h"

namespace minivmm::storage::test {

struct ModeEngine {
  CacheMode mode;
  IoEngineKind engine;
};

inline std::vector<ModeEngine> all_modes_both_engines() {
  std::vector<ModeEngine> out;
  for (IoEngineKind e : {IoEngineKind::IoUring, IoEngineKind::Sync}) {
    for (CacheMode m : {CacheMode::Writeback, CacheMode::None, CacheMode::Writethrough,
                        CacheMode::Directsync, CacheMode::Unsafe}) {
      out.push_back({m, e});
    }
  }
  return out;
}

inline std::string mode_engine_name(const ::testing::TestParamInfo<ModeEngine>& info) {
  return std::string(to_string(info.param.mode)) + "_" +
         (info.param.engine == IoEngineKind::IoUring ? "uring" : "sync");
}

}  // namespace minivmm::storage::test

// io_uring can be disabled (sysctl, seccomp); say so instead of passing.
#define SKIP_IF_NO_URING(kind)                                  \
  do {                                                          \
    if ((kind) == ::minivmm::storage::IoEngineKind::IoUring &&  \
        !::minivmm::storage::test::uring_available()) {         \
      GTEST_SKIP() << "io_uring cannot be set up on this host"; \
    }                                                           \
  } while (0)
