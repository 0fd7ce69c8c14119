#include "vmm/loader/regular_file.h"

#include <fcntl.h>

#include "common/error.h"

namespace minivmm {
namespace {

void check_regular(const struct stat& st, const std::string& path, const std::string& what,
                   uint64_t max_bytes) {
  if (!S_ISREG(st.st_mode)) {
    throw Error(what + " '" + path + "' is " + file_type_name(st.st_mode) + ", not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    throw Error(what + " '" + path + "' is " + std::to_string(st.st_size) + " bytes, over the " +
                std::to_string(max_bytes) + "-byte limit");
  }
}

}  // namespace

std::string file_type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "an unknown kind of file";
}

RegularFile open_regular_file(const std::string& path, const std::string& what,
                              uint64_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw sys_error("cannot open " + what + " '" + path + "'");
  check_regular(st, path, what, max_bytes);
  // O_NONBLOCK: should the path have become a FIFO since stat, open returns
  // at once and the fstat below refuses it; reads of a regular file ignore
  // the flag (open(2)).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    throw sys_error("cannot open " + what + " '" + path + "'");
  }
  check_regular(st, path, what, max_bytes);
  return {std::move(fd), static_cast<uint64_t>(st.st_size)};
}

}  // namespace minivmm
