// The files one run reads and writes, checked together before anything is
// opened: a log (the serial log, a disk's write_log) is created and
// truncated, so a log path that names a disk image, the kernel, the initrd,
// the config file, the System.map or another log would destroy that file.
// Files are compared by identity (st_dev and st_ino; for a block device the
// device; for a path that does not exist yet, its directory's identity and
// its name), so symlinks, hard links and ./ spellings all count.
#pragma once

#include <string>

#include "common/error.h"
#include "vmm/config/config.h"

namespace minivmm {

// A kernel or initrd that is not a regular file (exit code 66, like the
// loader's own image errors).
class BootFileError : public Error {
 public:
  using Error::Error;
};

// Throws ConfigError when a log names the same file as an input or another
// log, is not a regular file (a write log may also be a FIFO: a process
// reading it as written), or cannot be created or written (naming the
// path and why); when two disks name the same image and either is writable;
// or when the System.map is not a regular file. Throws BootFileError when
// the kernel or initrd is not a regular file (a FIFO would block the
// loader's open). A kernel, initrd or disk image that does not exist is left
// to the loader and the disk's open, which report it.
void check_run_files(const VmConfig& config, const std::string& config_path);

}  // namespace minivmm
