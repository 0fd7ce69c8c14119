#include "vmm/loader/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "common/unique_fd.h"

namespace minivmm {

MappedFile::MappedFile(const std::string& path, const std::string& what) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) {
    throw sys_error("cannot open " + what + " '" + path + "'");
  }
  if (!S_ISREG(st.st_mode)) throw Error(what + " '" + path + "' is not a regular file");
  if (st.st_size == 0) throw Error(what + " '" + path + "' is empty");
  size_ = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
  if (p == MAP_FAILED) throw sys_error("cannot map " + what + " '" + path + "'");
  data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace minivmm
