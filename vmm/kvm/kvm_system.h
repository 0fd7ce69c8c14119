// /dev/kvm: opening it, checking the API version and every capability
// minivmm uses, with errors that say what is missing and how to fix it.
#pragma once

#include <linux/kvm.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace minivmm {

class KvmUnavailable : public Error {
 public:
  using Error::Error;
};

class KvmSystem {
 public:
  // Throws KvmUnavailable with a fix-it hint.
  static KvmSystem open(const std::string& path = "/dev/kvm");

  int fd() const { return fd_.get(); }
  int check_extension(long cap) const;
  // Throws KvmUnavailable naming each missing capability.
  void require_capabilities(unsigned vcpus) const;
  size_t vcpu_mmap_size() const;
  std::vector<kvm_cpuid_entry2> supported_cpuid() const;

 private:
  explicit KvmSystem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace minivmm
