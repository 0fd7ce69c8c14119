#include "devices/virtio/transport_signals.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"
#include "devices/virtio/virtio_constants.h"

namespace minivmm::virtio {

TransportSignals::TransportSignals() : irq_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!irq_) throw sys_error("virtio transport: irq eventfd");
}

void TransportSignals::raise(uint32_t bit) {
  isr_.fetch_or(bit);
  const uint64_t one = 1;
  // EAGAIN only when the counter would overflow: an interrupt is pending anyway.
  [[maybe_unused]] ssize_t n = ::write(irq_.get(), &one, sizeof(one));
}

void TransportSignals::used_buffer() { raise(kInterruptUsedBuffer); }

void TransportSignals::config_changed() {
  generation_.fetch_add(1);
  raise(kInterruptConfigChange);
}

void TransportSignals::bump_config_generation() { generation_.fetch_add(1); }

void TransportSignals::needs_reset() {
  if (needs_reset_.exchange(true)) return;  // one interrupt per episode
  raise(kInterruptConfigChange);
}

void TransportSignals::clear() {
  isr_.store(0);
  needs_reset_.store(false);
}

}  // namespace minivmm::virtio
