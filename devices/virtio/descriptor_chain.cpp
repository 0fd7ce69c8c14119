#include "devices/virtio/descriptor_chain.h"

#include <cstring>
#include <optional>

#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {

namespace {

struct RawDescriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(RawDescriptor) == kDescriptorSize);

std::optional<RawDescriptor> load(const GuestMemory& mem, uint64_t table_gpa, uint32_t index) {
  // Copied out once: the guest may rewrite the table while we look at it.
  return mem.read<RawDescriptor>(table_gpa + uint64_t{index} * kDescriptorSize);
}

// Walks the indirect table `table` and appends its buffers to `chain`.
ChainError walk_indirect(const GuestMemory& mem, const RawDescriptor& table, size_t max_total,
                         DescriptorChain& chain) {
  if (table.len == 0 || table.len % kDescriptorSize != 0) return ChainError::IndirectBadLength;
  const uint32_t entries = table.len / kDescriptorSize;
  if (!mem.translate(table.addr, table.len)) return ChainError::TableOutOfRange;
  uint32_t index = 0;
  // Each entry at most once: a longer walk must revisit one, i.e. loop.
  for (uint32_t step = 0;; ++step) {
    if (step >= entries || chain.descriptors.size() >= max_total) return ChainError::TooLong;
    const auto d = load(mem, table.addr, index);
    if (!d) return ChainError::TableOutOfRange;
    if (d->flags & kDescFlagIndirect) return ChainError::IndirectNested;
    chain.descriptors.push_back({d->addr, d->len, (d->flags & kDescFlagWrite) != 0});
    if (!(d->flags & kDescFlagNext)) return ChainError::None;
    if (d->next >= entries) return ChainError::NextOutOfRange;
    index = d->next;
  }
}

}  // namespace

std::string_view describe(ChainError error) {
  switch (error) {
    case ChainError::None: return "no error";
    case ChainError::TableOutOfRange: return "descriptor table outside guest RAM";
    case ChainError::NextOutOfRange: return "next index beyond the descriptor table";
    case ChainError::TooLong: return "chain longer than its table (loop)";
    case ChainError::IndirectNotNegotiated: return "indirect descriptor not negotiated";
    case ChainError::IndirectWithNext: return "indirect descriptor with NEXT flag";
    case ChainError::IndirectBadLength: return "indirect table length not a multiple of 16";
    case ChainError::IndirectNested: return "nested indirect descriptor";
  }
  return "unknown chain error";
}

void read_descriptor_chain_into(const GuestMemory& mem, uint64_t table_gpa, uint16_t queue_size,
                                uint16_t head, bool indirect_negotiated, DescriptorChain& chain) {
  chain.head = head;
  chain.descriptors.clear();
  chain.error = ChainError::None;
  auto fail = [&chain](ChainError e) { chain.error = e; };
  if (head >= queue_size) return fail(ChainError::NextOutOfRange);
  uint16_t index = head;
  for (uint32_t step = 0;; ++step) {
    if (step >= queue_size || chain.descriptors.size() >= queue_size) {
      return fail(ChainError::TooLong);
    }
    const auto d = load(mem, table_gpa, index);
    if (!d) return fail(ChainError::TableOutOfRange);
    if (d->flags & kDescFlagIndirect) {
      // 2.7.5.3: a table ends the chain; its own WRITE flag is ignored.
      if (!indirect_negotiated) return fail(ChainError::IndirectNotNegotiated);
      if (d->flags & kDescFlagNext) return fail(ChainError::IndirectWithNext);
      return fail(walk_indirect(mem, *d, queue_size, chain));
    }
    chain.descriptors.push_back({d->addr, d->len, (d->flags & kDescFlagWrite) != 0});
    if (!(d->flags & kDescFlagNext)) return;
    if (d->next >= queue_size) return fail(ChainError::NextOutOfRange);
    index = d->next;
  }
}

DescriptorChain read_descriptor_chain(const GuestMemory& mem, uint64_t table_gpa,
                                      uint16_t queue_size, uint16_t head,
                                      bool indirect_negotiated) {
  DescriptorChain chain;
  read_descriptor_chain_into(mem, table_gpa, queue_size, head, indirect_negotiated, chain);
  return chain;
}

}  // namespace minivmm::virtio
