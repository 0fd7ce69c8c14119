#include "vmm/host/thread_stacks.h"

#include <pthread.h>

#include "common/error.h"

namespace minivmm {

void set_default_thread_stack_size(size_t bytes) {
  pthread_attr_t attr;
  int err = pthread_attr_init(&attr);
  if (err == 0) err = pthread_attr_setstacksize(&attr, bytes);
  if (err == 0) err = pthread_setattr_default_np(&attr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    throw sys_error("thread stacks: setting the default stack size to " + std::to_string(bytes) +
                        " bytes",
                    err);
  }
}

}  // namespace minivmm
