#include "storage/image_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/error.h"
#include "storage/aligned_buffer.h"

namespace minivmm::storage {
namespace {

constexpr uint64_t kSectorSize = 512;  // virtio-blk sector unit

std::string image(const std::string& path) { return "disk image '" + path + "'"; }

struct stat stat_image(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) throw Error(image(path) + ": no such file or block device");
    if (errno == EACCES) throw sys_error(image(path) + ": cannot reach it (search permission)");
    throw sys_error(image(path) + ": stat failed");
  }
  if (S_ISDIR(st.st_mode)) throw Error(image(path) + ": is a directory, not an image");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    throw Error(image(path) + ": neither a regular file nor a block device");
  }
  return st;
}

UniqueFd open_fd(const std::string& path, bool read_only, bool direct) {
  const int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
  UniqueFd fd(::open(path.c_str(), flags));
  if (fd) return fd;
  const std::string how = read_only ? "read-only" : "read-write";
  switch (errno) {
    case EACCES:
    case EPERM: throw sys_error(image(path) + ": no permission to open it " + how);
    case EROFS: throw sys_error(image(path) + ": on a read-only filesystem; open it read_only");
    case EINVAL:
      if (direct) {
        throw sys_error(image(path) +
                        ": its filesystem refuses O_DIRECT (needed by cache=none/directsync; "
                        "tmpfs cannot do it); use cache=writeback or writethrough");
      }
      break;
    default: break;
  }
  throw sys_error(image(path) + ": cannot open it " + how);
}

// OFD locks belong to the open file description, so they conflict even
// between two opens inside one process, and vanish with the last fd.
void lock_image(int fd, const std::string& path, bool read_only) {
  struct flock lock {};
  lock.l_type = read_only ? F_RDLCK : F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // whole file
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) return;
  if (errno == EAGAIN || errno == EACCES) {
    throw Error(image(path) + " is locked: another process holds it open" +
                (read_only ? " read-write" : "") +
                " (OFD lock); two VMMs must not share one image read-write");
  }
  throw sys_error(image(path) + ": cannot lock it (fcntl F_OFD_SETLK)");
}

uint64_t image_size(int fd, const struct stat& st, const std::string& path) {
  if (!S_ISBLK(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  uint64_t bytes = 0;
  if (::ioctl(fd, BLKGETSIZE64, &bytes) != 0) throw sys_error(image(path) + ": BLKGETSIZE64");
  return bytes;
}

// O_DIRECT alignment of a regular file: statx STATX_DIOALIGN (Linux 6.1+),
// else probe a 512-byte then 4096-byte direct read, else assume 512.
void detect_file_alignment(ImageFile& img) {
  struct statx sx {};
  if (::statx(img.fd.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
      (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align != 0) {
    img.logical_block_size = std::max<uint32_t>(sx.stx_dio_offset_align, kSectorSize);
    img.memory_alignment = std::max<uint32_t>(sx.stx_dio_mem_align, 1);
    return;
  }
  AlignedBuffer probe(4096, 4096);
  for (uint32_t size : {512u, 4096u}) {
    if (::pread(img.fd.get(), probe.data(), size, 0) >= 0) {
      img.logical_block_size = size;
      img.memory_alignment = size;
      return;
    }
  }
  img.logical_block_size = kSectorSize;
  img.memory_alignment = kSectorSize;
}

}  // namespace

ImageFile open_image_file(const std::string& path, bool read_only, bool direct,
                          ImageFormat format) {
  const struct stat before = stat_image(path);
  ImageFile img;
  img.fd = open_fd(path, read_only, direct);
  struct stat st {};
  if (::fstat(img.fd.get(), &st) != 0) throw sys_error(image(path) + ": fstat");
  if (st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
    throw Error(image(path) + ": replaced while being opened");
  }
  img.block_device = S_ISBLK(st.st_mode);
  lock_image(img.fd.get(), path, read_only);
  check_image_format(img.fd.get(), path, format);

  img.size_bytes = image_size(img.fd.get(), st, path);
  if (img.size_bytes == 0) throw Error(image(path) + " is empty (size 0 bytes)");
  if (img.size_bytes % kSectorSize != 0) {
    throw Error(image(path) + ": size " + std::to_string(img.size_bytes) +
                " bytes is not a multiple of 512");
  }

  if (img.block_device) {
    int sector = 0;
    if (::ioctl(img.fd.get(), BLKSSZGET, &sector) != 0) {
      throw sys_error(image(path) + ": BLKSSZGET");
    }
    img.logical_block_size = static_cast<uint32_t>(sector);
    img.memory_alignment = static_cast<uint32_t>(sector);
  } else if (direct) {
    detect_file_alignment(img);
  }
  if (img.size_bytes % img.logical_block_size != 0) {
    throw Error(image(path) + ": size " + std::to_string(img.size_bytes) +
                " bytes is not a multiple of its logical block size " +
                std::to_string(img.logical_block_size));
  }
  return img;
}

}  // namespace minivmm::storage
