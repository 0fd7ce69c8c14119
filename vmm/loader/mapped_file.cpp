#include "vmm/loader/mapped_file.h"

#include <sys/mman.h>

#include "vmm/loader/regular_file.h"

namespace minivmm {

MappedFile::MappedFile(const std::string& path, const std::string& what) {
  const RegularFile file = open_regular_file(path, what, kMaxMappedFileBytes);
  if (file.size == 0) throw Error(what + " '" + path + "' is empty");
  size_ = static_cast<size_t>(file.size);
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, file.fd.get(), 0);
  if (p == MAP_FAILED) throw sys_error("cannot map " + what + " '" + path + "'");
  data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace minivmm
