// Seeds of the parser target (virtio_blk_parser_fuzz.cpp): one options byte,
// then guest RAM (descriptor table at 0, available ring at 0x100, used ring
// at 0x200, guest address 0x80000000 + offset). Without them libFuzzer never
// produced a parseable request (15 of 71 parser edges); these reach every
// request type, direct and indirect, and the ring corruptions.
#include <cstring>

#include "tests/fuzz/fuzz_seeds.h"

namespace {

constexpr size_t kRam = 64 << 10;
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;
// Options bits (see the target): indirect, event_idx, capacity 0, read-only,
// discard, write zeroes.
constexpr uint8_t kAllFeatures = 1 | 2 | 16 | 32;

struct Seed {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(1 + kRam, 0);
  uint8_t* ram() { return bytes.data() + 1; }
  void desc(uint64_t table_off, uint16_t i, uint64_t addr_off, uint32_t len, uint16_t flags,
            uint16_t next) {
    const uint64_t addr = 0x80000000 + addr_off;
    uint8_t* d = ram() + table_off + 16L * i;
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
  void bytes_at(uint64_t off, const void* p, size_t n) { std::memcpy(ram() + off, p, n); }
};

// Header (readable), optional data, status (writable): a direct chain at
// descriptors first..first+2, made available as head `first`.
void direct_request(Seed& s, uint16_t first, uint64_t area, uint32_t type, uint64_t sector,
                    uint32_t data_len, bool data_writable) {
  s.header(area, type, sector);
  s.desc(0, first, area, 16, kNext, static_cast<uint16_t>(first + 1));
  uint16_t status = static_cast<uint16_t>(first + 1);
  if (data_len) {
    s.desc(0, first + 1, area + 0x200, data_len,
           static_cast<uint16_t>(kNext | (data_writable ? kWrite : 0)),
           static_cast<uint16_t>(first + 2));
    status = static_cast<uint16_t>(first + 2);
  }
  s.desc(0, status, area + 0x100, 1, kWrite, 0);
}

}  // namespace

std::vector<std::vector<uint8_t>> builtin_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  {  // direct read of 2 sectors
    Seed s;
    s.bytes[0] = 0x3f;
    direct_request(s, 0, 0x1000, 0, 4, 1024, true);
    s.avail({0});
    seeds.push_back(s.bytes);
  }
  {  // one of each type, direct, with event_idx
    Seed s;
    s.bytes[0] = kAllFeatures;
    direct_request(s, 0, 0x1000, 1, 8, 512, false);  // write
    direct_request(s, 3, 0x2000, 4, 0, 0, false);    // flush
    direct_request(s, 5, 0x3000, 8, 0, 20, true);    // get id
    const uint64_t seg[2] = {16, 8};                 // sector 16, 8 sectors, flags 0
    direct_request(s, 8, 0x4000, 11, 0, 16, false);  // discard
    s.bytes_at(0x4200, seg, 16);
    const uint64_t wz[2] = {32, uint64_t{4} | (uint64_t{1} << 32)};  // unmap
    direct_request(s, 11, 0x5000, 13, 0, 16, false);                 // write zeroes
    s.bytes_at(0x5200, wz, 16);
    direct_request(s, 14, 0x6000, 99, 0, 0, false);  // unknown type
    s.avail({0, 3, 5, 8, 11, 14});
    seeds.push_back(s.bytes);
  }
  {  // indirect write + a flush
    Seed s;
    s.bytes[0] = 0x01;
    s.header(0x1000, 1, 0);
    s.desc(0x4000, 0, 0x1000, 16, kNext, 1);
    s.desc(0x4000, 1, 0x2000, 512, kNext, 2);
    s.desc(0x4000, 2, 0x3000, 1, kWrite, 0);
    s.desc(0, 5, 0x4000, 48, kIndirect, 0);
    s.header(0x1100, 4, 0);
    s.desc(0, 6, 0x1100, 16, kNext, 7);
    s.desc(0, 7, 0x3001, 1, kWrite, 0);
    s.avail({5, 6});
    seeds.push_back(s.bytes);
  }
  {  // header and data in one descriptor, data and status in another
    Seed s;
    s.bytes[0] = kAllFeatures;
    s.header(0x1000, 1, 2);
    s.desc(0, 0, 0x1000, 16 + 512, kNext, 1);
    s.header(0x2000, 0, 2);
    s.desc(0, 2, 0x2000, 16, kNext, 3);
    s.desc(0, 3, 0x2200, 512 + 1, kWrite, 0);
    s.desc(0, 1, 0x3000, 1, kWrite, 0);
    s.avail({0, 2});
    seeds.push_back(s.bytes);
  }
  {  // read-only disk, zero capacity: writes and reads refused
    Seed s;
    s.bytes[0] = 4 | 8 | kAllFeatures;
    direct_request(s, 0, 0x1000, 1, 0, 512, false);
    direct_request(s, 3, 0x2000, 0, 0, 512, true);
    s.avail({0, 3});
    seeds.push_back(s.bytes);
  }
  {  // a loop and a buffer outside RAM
    Seed s;
    s.desc(0, 0, 0x1000, 16, kNext, 1);
    s.desc(0, 1, 0x1000, 16, kNext, 0);
    s.desc(0, 2, 0x1000, 16, kNext, 3);
    s.desc(0, 3, kRam - 8, 512, kNext | kWrite, 4);
    s.desc(0, 4, 0x3000, 1, kWrite, 0);
    s.avail({0, 2});
    seeds.push_back(s.bytes);
  }
  {  // corrupt ring: idx far ahead, head out of range
    Seed s;
    s.avail({200}, 40);
    seeds.push_back(s.bytes);
  }
  seeds.push_back({});            // empty input
  seeds.push_back({0xff, 0x01});  // tiny input
  return seeds;
}
