// Walking one split-ring descriptor chain (virtio 1.x 2.7.5), direct or
// through an indirect table (2.7.5.3). Every table read goes through
// GuestMemory::translate and every step is bounded, so a hostile chain
// (loop, bad next index, nested indirect) ends in a ChainError, never a hang.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/guest_memory.h"

namespace minivmm::virtio {

// One guest buffer of a chain. The address is not translated here: the
// consumer translates each buffer when it uses it.
struct Descriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  bool device_writable = false;
};

enum class ChainError {
  None,
  TableOutOfRange,        // a descriptor table entry lies outside guest RAM
  NextOutOfRange,         // next index >= table size
  TooLong,                // more descriptors than the table holds: a loop
  IndirectNotNegotiated,  // INDIRECT flag without VIRTIO_F_RING_INDIRECT_DESC
  IndirectWithNext,       // INDIRECT and NEXT together (2.7.5.3.1)
  IndirectBadLength,      // table length 0 or not a multiple of 16
  IndirectNested,         // INDIRECT inside an indirect table (2.7.5.3.1)
};

std::string_view describe(ChainError error);

struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Descriptor> descriptors;
  ChainError error = ChainError::None;
};

// Size of one split-ring descriptor in bytes.
inline constexpr uint64_t kDescriptorSize = 16;

// Reads the chain starting at `head` of the descriptor table at `table_gpa`
// (`queue_size` entries). The chain may hold at most `queue_size`
// descriptors in total (2.7.5.3.1: no chain longer than the queue).
DescriptorChain read_descriptor_chain(const GuestMemory& mem, uint64_t table_gpa,
                                      uint16_t queue_size, uint16_t head, bool indirect_negotiated);
// The same into `chain`, reusing its descriptor storage (no allocation per
// request on the data path once it has grown).
void read_descriptor_chain_into(const GuestMemory& mem, uint64_t table_gpa, uint16_t queue_size,
                                uint16_t head, bool indirect_negotiated, DescriptorChain& chain);

}  // namespace minivmm::virtio
