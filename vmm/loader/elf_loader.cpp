#include "vmm/loader/elf_loader.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "vmm/x86_64/load_range.h"
#include "vmm/x86_64/memory_layout.h"

namespace minivmm {
namespace {

// Xen's ELF note carrying the 32-bit PVH entry point
// (include/xen/interface/elfnote.h).
constexpr uint32_t kXenElfnotePhys32Entry = 18;
constexpr char kXenNoteName[] = "Xen";

// x86_64 kernel text is linked at -2 GiB (__START_KERNEL_map).
constexpr uint64_t kKernelVirtualBase = 0xffffffff80000000ULL;

template <typename T>
T read_struct(std::span<const uint8_t> image, uint64_t offset) {
  T value;
  std::memcpy(&value, image.data() + offset, sizeof(T));
  return value;
}

// Throws unless [offset, offset + len) lies within the file.
void check_in_file(std::span<const uint8_t> image, uint64_t offset, uint64_t len,
                   const std::string& name, const std::string& what) {
  const uint64_t end = checked_add(offset, len, name + ": " + what);
  if (end > image.size()) {
    throw Error(fmt::format("{}: {} [{:#x}, {:#x}) extends past the end of the file ({} bytes)",
                            name, what, offset, end, image.size()));
  }
}

Elf64_Ehdr read_and_check_header(std::span<const uint8_t> image, const std::string& name) {
  if (image.size() < sizeof(Elf64_Ehdr)) {
    throw Error(fmt::format("{}: truncated ELF header ({} bytes, need {})", name, image.size(),
                            sizeof(Elf64_Ehdr)));
  }
  const auto eh = read_struct<Elf64_Ehdr>(image, 0);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    throw Error(name + ": bad ELF magic (not an ELF file)");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
    throw Error(fmt::format("{}: ELF class {} is not ELFCLASS64 (a 64-bit kernel is required)",
                            name, eh.e_ident[EI_CLASS]));
  }
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    throw Error(name + ": ELF data encoding is not little-endian");
  }
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    throw Error(name + ": unsupported ELF version");
  }
  if (eh.e_machine != EM_X86_64) {
    throw Error(fmt::format("{}: ELF machine {} is not x86_64 ({})", name, eh.e_machine,
                            static_cast<int>(EM_X86_64)));
  }
  if (eh.e_type != ET_EXEC) {
    throw Error(fmt::format("{}: ELF type {} is not ET_EXEC", name, eh.e_type));
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    throw Error(
        fmt::format("{}: e_phentsize {} is not {}", name, eh.e_phentsize, sizeof(Elf64_Phdr)));
  }
  if (eh.e_phnum == 0 || eh.e_phnum == PN_XNUM) {
    throw Error(fmt::format("{}: unsupported program header count {}", name, eh.e_phnum));
  }
  check_in_file(image, eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), name,
                "program header table");
  return eh;
}

std::vector<Elf64_Phdr> read_program_headers(std::span<const uint8_t> image, const Elf64_Ehdr& eh) {
  std::vector<Elf64_Phdr> phdrs;
  phdrs.reserve(eh.e_phnum);
  for (uint64_t i = 0; i < eh.e_phnum; ++i) {
    phdrs.push_back(read_struct<Elf64_Phdr>(image, eh.e_phoff + i * sizeof(Elf64_Phdr)));
  }
  return phdrs;
}

void check_load_segment(const GuestMemory& mem, std::span<const uint8_t> image,
                        const Elf64_Phdr& ph, size_t index, const std::string& name) {
  const std::string what = fmt::format("{}: PT_LOAD segment {}", name, index);
  if (ph.p_filesz > ph.p_memsz) {
    throw Error(
        fmt::format("{}: p_filesz {:#x} exceeds p_memsz {:#x}", what, ph.p_filesz, ph.p_memsz));
  }
  check_in_file(image, ph.p_offset, ph.p_filesz, name, fmt::format("PT_LOAD segment {}", index));
  if (ph.p_paddr < layout::kHighMemStart) {
    throw Error(fmt::format("{}: p_paddr {:#x} is below 1 MiB, where the boot structures live",
                            what, ph.p_paddr));
  }
  check_load_range(mem, ph.p_paddr, ph.p_memsz, what);
}

void check_no_overlap(const std::vector<Elf64_Phdr>& loads, const std::string& name) {
  for (size_t i = 0; i < loads.size(); ++i) {
    for (size_t j = i + 1; j < loads.size(); ++j) {
      const auto& a = loads[i];
      const auto& b = loads[j];
      if (a.p_memsz && b.p_memsz && a.p_paddr < b.p_paddr + b.p_memsz &&
          b.p_paddr < a.p_paddr + a.p_memsz) {
        throw Error(fmt::format("{}: PT_LOAD segments at {:#x} and {:#x} overlap", name, a.p_paddr,
                                b.p_paddr));
      }
    }
  }
}

// vmlinux sets e_entry to a physical address (6.1: phys_startup_64); other
// images may carry the kernel-virtual address, translated via its segment.
uint64_t physical_entry(uint64_t e_entry, const std::vector<Elf64_Phdr>& loads,
                        const std::string& name) {
  for (const auto& ph : loads) {
    if (e_entry >= kKernelVirtualBase && e_entry >= ph.p_vaddr &&
        e_entry - ph.p_vaddr < ph.p_memsz) {
      return e_entry - ph.p_vaddr + ph.p_paddr;
    }
    if (e_entry < kKernelVirtualBase && e_entry >= ph.p_paddr &&
        e_entry - ph.p_paddr < ph.p_memsz) {
      return e_entry;
    }
  }
  throw Error(
      fmt::format("{}: entry point {:#x} is not inside any PT_LOAD segment", name, e_entry));
}

uint64_t align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

// Walks the notes of one PT_NOTE segment (ELF notes are 4-byte aligned).
std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> image, const Elf64_Phdr& ph,
                                       const std::string& name) {
  check_in_file(image, ph.p_offset, ph.p_filesz, name, "PT_NOTE segment");
  const auto notes = image.subspan(ph.p_offset, ph.p_filesz);
  uint64_t pos = 0;
  while (notes.size() - pos >= sizeof(Elf64_Nhdr)) {
    const auto nh = read_struct<Elf64_Nhdr>(notes, pos);
    const uint64_t name_off = pos + sizeof(Elf64_Nhdr);
    const uint64_t desc_off = name_off + align4(nh.n_namesz);
    const uint64_t next = desc_off + align4(nh.n_descsz);
    if (next > notes.size()) {
      throw Error(
          fmt::format("{}: ELF note at file offset {:#x} is truncated", name, ph.p_offset + pos));
    }
    const bool is_xen = nh.n_namesz == sizeof(kXenNoteName) &&
                        std::memcmp(notes.data() + name_off, kXenNoteName, nh.n_namesz) == 0;
    if (is_xen && nh.n_type == kXenElfnotePhys32Entry) {
      // Linux emits the address as a pointer-sized value; accept 4 or 8 bytes.
      if (nh.n_descsz == 4) return read_struct<uint32_t>(notes, desc_off);
      if (nh.n_descsz == 8) return read_struct<uint64_t>(notes, desc_off);
      throw Error(fmt::format("{}: PVH entry note has descriptor size {}", name, nh.n_descsz));
    }
    pos = next;
  }
  return std::nullopt;
}

}  // namespace

bool is_elf_image(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

ElfLoadResult load_elf_kernel(const GuestMemory& mem, std::span<const uint8_t> image,
                              const std::string& name) {
  const Elf64_Ehdr eh = read_and_check_header(image, name);
  const std::vector<Elf64_Phdr> phdrs = read_program_headers(image, eh);

  std::vector<Elf64_Phdr> loads;
  ElfLoadResult result;
  for (size_t i = 0; i < phdrs.size(); ++i) {
    const auto& ph = phdrs[i];
    if (ph.p_type == PT_LOAD) {
      check_load_segment(mem, image, ph, i, name);
      loads.push_back(ph);
    } else if (ph.p_type == PT_NOTE && !result.pvh_entry) {
      result.pvh_entry = find_pvh_entry(image, ph, name);
    }
  }
  if (loads.empty()) throw Error(name + ": no PT_LOAD segments");
  check_no_overlap(loads, name);
  result.entry = physical_entry(eh.e_entry, loads, name);

  // Everything is validated: only now touch guest memory.
  result.kernel_start = UINT64_MAX;
  for (const auto& ph : loads) {
    uint8_t* dst = mem.translate(ph.p_paddr, ph.p_memsz);
    std::memcpy(dst, image.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    result.kernel_start = std::min(result.kernel_start, ph.p_paddr);
    result.kernel_end = std::max(result.kernel_end, ph.p_paddr + ph.p_memsz);
  }
  return result;
}

}  // namespace minivmm
