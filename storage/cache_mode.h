// The five disk cache modes, as defined by docs/cache-modes.md
// (the project's contract; QEMU's cache= semantics).
#pragma once

#include <optional>
#include <string_view>

namespace minivmm::storage {

enum class CacheMode { Writeback, None, Writethrough, Directsync, Unsafe };

// The three independent switches that make a mode (contract table).
struct CacheModeTraits {
  bool write_cache;     // guest is told it has a volatile write cache
  bool direct;          // host page cache bypassed (O_DIRECT)
  bool flush_honoured;  // guest flush -> host fdatasync
};

constexpr CacheModeTraits traits(CacheMode m) {
  switch (m) {
    case CacheMode::Writeback: return {true, false, true};
    case CacheMode::None: return {true, true, true};
    case CacheMode::Writethrough: return {false, false, true};
    case CacheMode::Directsync: return {false, true, true};
    case CacheMode::Unsafe: return {true, false, false};
  }
  return {false, false, true};
}

std::optional<CacheMode> parse_cache_mode(std::string_view name);
std::string_view to_string(CacheMode m);
// "writeback, none, writethrough, directsync, unsafe": for error messages.
std::string_view allowed_cache_modes();

}  // namespace minivmm::storage
