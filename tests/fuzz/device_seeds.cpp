// Seeds of the device target: a normal session (reads, writes, flush, GET_ID,
// discard, write zeroes, direct and indirect), requests held in flight across
// a reset, a republished in-flight head, a chain without a status byte,
// descriptor and memory changes between notifies, config writes.
#include "tests/fuzz/device_fuzz_input.h"
#include "tests/fuzz/fuzz_seeds.h"

using minivmm::fuzz::DeviceInputBuilder;
using minivmm::fuzz::DeviceOp;

namespace {

constexpr uint64_t kAll = ~uint64_t{0};

void request(DeviceInputBuilder& b, uint8_t queue, uint8_t type, uint16_t sector, uint8_t sectors,
             uint8_t framing = 0) {
  b.op(DeviceOp::AddRequest).put(queue).put(type).put(sector).put(sectors).put(framing);
}

}  // namespace

std::vector<std::vector<uint8_t>> builtin_seeds() {
  std::vector<std::vector<uint8_t>> seeds;
  {
    DeviceInputBuilder b(0, kAll);
    for (uint8_t type = 0; type < 7; ++type) request(b, 0, type, 8, 1);
    request(b, 0, 1, 120, 8, 1);  // indirect write near the end
    request(b, 0, 0, 127, 2);     // read past the end
    b.op(DeviceOp::Settle);
    seeds.push_back(b.bytes);
  }
  {  // two queues, writethrough, held requests, reset in flight
    DeviceInputBuilder b(16 | (2 << 1), kAll);
    b.op(DeviceOp::HoldDisk);
    request(b, 0, 1, 0, 4);
    request(b, 1, 0, 4, 4);
    b.op(DeviceOp::Settle).op(DeviceOp::Reset);
    request(b, 1, 2, 0, 0);
    b.op(DeviceOp::ReleaseDisk).op(DeviceOp::Settle);
    seeds.push_back(b.bytes);
  }
  {  // republish an in-flight head; a chain without a status byte
    DeviceInputBuilder b(0, kAll);
    b.op(DeviceOp::HoldDisk);
    request(b, 0, 0, 0, 1);
    b.op(DeviceOp::PublishHead).put(uint8_t{0}).put(uint8_t{0});
    b.op(DeviceOp::Reset);
    request(b, 0, 1, 0, 1, 4);
    b.op(DeviceOp::Settle).op(DeviceOp::Reset).op(DeviceOp::ReleaseDisk);
    seeds.push_back(b.bytes);
  }
  {  // hand-written descriptors, memory changed between notifies, config writes
    DeviceInputBuilder b(1, kAll);
    b.op(DeviceOp::WriteDescriptor)
        .put(uint8_t{0})
        .put(uint8_t{0})
        .put(uint8_t{0})
        .put(uint16_t{0})
        .put(uint32_t{16})
        .put(uint8_t{1})
        .put(uint8_t{1});
    b.op(DeviceOp::WriteDescriptor)
        .put(uint8_t{0})
        .put(uint8_t{1})
        .put(uint8_t{0})
        .put(uint16_t{16})
        .put(uint32_t{1})
        .put(uint8_t{2})
        .put(uint8_t{0});
    b.op(DeviceOp::PokeMemory).put(uint16_t{0}).put(uint8_t{4}).put(uint32_t{4});
    b.op(DeviceOp::PublishHead).put(uint8_t{0}).put(uint8_t{0});
    b.op(DeviceOp::WriteConfig).put(uint8_t{32}).put(uint8_t{0});
    b.op(DeviceOp::WriteConfig).put(uint8_t{0}).put(uint8_t{1});
    b.op(DeviceOp::WriteRegister).put(uint8_t{0x70 / 4}).put(uint32_t{0});  // status = 0: reset
    b.op(DeviceOp::ReadRegister).put(uint8_t{0x70 / 4});
    b.op(DeviceOp::ReadConfig).put(uint8_t{0});
    b.op(DeviceOp::ReadConfig).put(uint8_t{32});
    seeds.push_back(b.bytes);
  }
  {  // features without indirect / event idx / flush
    DeviceInputBuilder b(2 << 1, ~((uint64_t{1} << 28) | (uint64_t{1} << 29) | (uint64_t{1} << 9)));
    request(b, 0, 1, 0, 2);
    request(b, 0, 2, 0, 0);
    b.op(DeviceOp::Settle);
    seeds.push_back(b.bytes);
  }
  return seeds;
}
