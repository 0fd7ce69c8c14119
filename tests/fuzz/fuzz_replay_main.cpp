// Runs a fuzz target on its built-in seeds (and on any files named on the
// command line) in a normal build, so the regular test suite exercises the
// same entry point. `--write-seeds DIR` writes the seeds to DIR instead
// (trailing zero bytes trimmed: the targets zero-fill what is missing).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int write_seeds(const std::string& dir) {
  const auto seeds = builtin_seeds();
  for (size_t i = 0; i < seeds.size(); ++i) {
    size_t len = seeds[i].size();
    while (len > 0 && seeds[i][len - 1] == 0) --len;
    const std::string path = dir + "/seed-" + std::to_string(i);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seeds[i].data()), static_cast<std::streamsize>(len));
    if (!out) {
      std::fprintf(stderr, "cannot write seed %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
  size_t runs = 0;
  for (const auto& seed : builtin_seeds()) {
    LLVMFuzzerTestOneInput(seed.data(), seed.size());
    ++runs;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read seed %s\n", argv[i]);
      return 1;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++runs;
  }
  std::printf("replayed %zu inputs\n", runs);
  return 0;
}
