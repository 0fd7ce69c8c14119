#include "storage/cache_mode.h"

#include <array>
#include <utility>

namespace minivmm::storage {
namespace {

// Names exactly as QEMU spells them for cache=.
constexpr std::array<std::pair<std::string_view, CacheMode>, 5> kNames{{
    {"writeback", CacheMode::Writeback},
    {"none", CacheMode::None},
    {"writethrough", CacheMode::Writethrough},
    {"directsync", CacheMode::Directsync},
    {"unsafe", CacheMode::Unsafe},
}};

}  // namespace

std::optional<CacheMode> parse_cache_mode(std::string_view name) {
  for (const auto& [text, mode] : kNames) {
    if (text == name) return mode;
  }
  return std::nullopt;
}

std::string_view to_string(CacheMode m) {
  for (const auto& [text, mode] : kNames) {
    if (mode == m) return text;
  }
  return "invalid";
}

std::string_view allowed_cache_modes() {
  return "writeback, none, writethrough, directsync, unsafe";
}

}  // namespace minivmm::storage
