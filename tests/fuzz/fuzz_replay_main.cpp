// Runs the fuzz target on built-in seeds (and on any files named on the
// command line) in a normal build, so the regular test suite exercises the
// same entry point: a valid read, an indirect write, a loop, a corrupt ring.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kRam = 64 << 10;

struct Seed {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(1 + kRam, 0);
  uint8_t* ram() { return bytes.data() + 1; }
  void desc(uint64_t table_off, uint16_t i, uint64_t addr_off, uint32_t len, uint16_t flags,
            uint16_t next) {
    const uint64_t addr = 0x80000000 + addr_off;
    uint8_t* d = ram() + table_off + 16 * i;
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  void avail(std::vector<uint16_t> heads, uint16_t idx_override = 0) {
    for (size_t i = 0; i < heads.size(); ++i) std::memcpy(ram() + 0x104 + 2 * i, &heads[i], 2);
    const uint16_t idx = idx_override ? idx_override : static_cast<uint16_t>(heads.size());
    std::memcpy(ram() + 0x102, &idx, 2);
  }
  void header(uint64_t off, uint32_t type, uint64_t sector) {
    std::memcpy(ram() + off, &type, 4);
    std::memcpy(ram() + off + 8, &sector, 8);
  }
};

std::vector<std::vector<uint8_t>> builtin_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  {  // direct read of 2 sectors
    Seed s;
    s.bytes[0] = 0x3f;
    s.header(0x1000, 0, 4);
    s.desc(0, 0, 0x1000, 16, 1, 1);
    s.desc(0, 1, 0x2000, 1024, 3, 2);
    s.desc(0, 2, 0x3000, 1, 2, 0);
    s.avail({0});
    seeds.push_back(s.bytes);
  }
  {  // indirect write + a flush
    Seed s;
    s.bytes[0] = 0x01;
    s.header(0x1000, 1, 0);
    s.desc(0x4000, 0, 0x1000, 16, 1, 1);
    s.desc(0x4000, 1, 0x2000, 512, 1, 2);
    s.desc(0x4000, 2, 0x3000, 1, 2, 0);
    s.desc(0, 5, 0x4000, 48, 4, 0);
    s.header(0x1100, 4, 0);
    s.desc(0, 6, 0x1100, 16, 1, 7);
    s.desc(0, 7, 0x3001, 1, 2, 0);
    s.avail({5, 6});
    seeds.push_back(s.bytes);
  }
  {  // a loop and a buffer outside RAM
    Seed s;
    s.desc(0, 0, 0x1000, 16, 1, 1);
    s.desc(0, 1, 0x1000, 16, 1, 0);
    s.desc(0, 2, 0x1000, 16, 1, 3);
    s.desc(0, 3, kRam - 8, 512, 3, 4);
    s.desc(0, 4, 0x3000, 1, 2, 0);
    s.avail({0, 2});
    seeds.push_back(s.bytes);
  }
  {  // corrupt ring: idx far ahead, head out of range
    Seed s;
    s.avail({200}, 40);
    seeds.push_back(s.bytes);
  }
  seeds.push_back({});           // empty input
  seeds.push_back({0xff, 0x01});  // tiny input
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
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
