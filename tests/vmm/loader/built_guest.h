// Test access to the guest kernel that scripts/build-guest.sh leaves in
// ${MINIVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/minivmm}/guest/current/.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace minivmm::test {

// Path of guest artifact `file` (vmlinux, bzImage); its bytes go to `bytes`,
// which stays empty when the guest has not been built.
inline std::string read_built_guest_file(const std::string& file, std::vector<uint8_t>& bytes) {
  const char* cache = std::getenv("MINIVMM_CACHE");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string dir = cache ? cache
                          : xdg ? std::string(xdg) + "/minivmm"
                                : std::string(home ? home : "") + "/.cache/minivmm";
  const std::string path = dir + "/guest/current/" + file;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return path;
  uint8_t buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) {
    bytes.insert(bytes.end(), buf, buf + n);
  }
  std::fclose(f);
  return path;
}

}  // namespace minivmm::test
