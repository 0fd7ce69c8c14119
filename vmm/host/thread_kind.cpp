#include "vmm/host/thread_kind.h"

namespace minivmm {

const char* thread_kind_name(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kVcpu: return "vcpu";
    case ThreadKind::kIoLoop: return "io-loop";
    case ThreadKind::kConsole: return "console";
    case ThreadKind::kControl: return "control";
    case ThreadKind::kApi: return "api";
  }
  return "unknown";
}

}  // namespace minivmm
