// Warnings caused by guest behaviour, at most `per_second` a second per
// device, so a hostile guest cannot flood the host's log.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace minivmm::virtio {

class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::string device, uint32_t per_second = 10)
      : device_(std::move(device)), per_second_(per_second) {}

  template <typename... Args>
  void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    if (!admit()) return;
    spdlog::warn("{}: {}", device_, fmt::format(fmt, std::forward<Args>(args)...));
  }

 private:
  bool admit() {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds(1)) {
      if (suppressed_in_window_ > 0) {
        spdlog::warn("{}: {} more warnings suppressed", device_, suppressed_in_window_);
      }
      window_start_ = now;
      in_window_ = 0;
      suppressed_in_window_ = 0;
    }
    if (in_window_ < per_second_) {
      ++in_window_;
      return true;
    }
    ++suppressed_in_window_;
    return false;
  }

  std::string device_;
  uint32_t per_second_;
  mutable std::mutex mutex_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_in_window_ = 0;
};

}  // namespace minivmm::virtio
