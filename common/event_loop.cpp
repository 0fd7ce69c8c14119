#include "common/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <array>
#include <future>

#include <spdlog/spdlog.h>

#include "common/error.h"

namespace minivmm {

namespace {
constexpr EventLoop::Handle kWakeHandle = 0;
}

EventLoop::EventLoop(std::string name, Threading threading, std::chrono::nanoseconds poll_max)
    : name_(std::move(name)), poll_window_(poll_max) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw sys_error("event loop " + name_ + ": epoll_create1");
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) throw sys_error("event loop " + name_ + ": eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeHandle;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev) != 0) {
    throw sys_error("event loop " + name_ + ": epoll_ctl add wake fd");
  }
  if (threading == Threading::CallerPumped) {
    owner_ = std::this_thread::get_id();
    return;
  }
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

EventLoop::~EventLoop() {
  if (caller_pumped()) {
    {
      std::lock_guard lock(tasks_mutex_);
      stopped_ = true;
    }
    run_posted_tasks();
    return;
  }
  thread_.request_stop();
  wake();
  thread_.join();
}

bool EventLoop::on_loop_thread() const {
  const auto loop_thread = caller_pumped() ? owner_ : thread_.get_id();
  return std::this_thread::get_id() == loop_thread;
}

void EventLoop::require_caller_pumped(const char* what) const {
  if (!caller_pumped() || !on_loop_thread()) {
    throw Error("event loop " + name_ + ": " + what +
                " is for a caller-pumped loop, on its thread");
  }
}

int EventLoop::pump(int max_rounds) {
  require_caller_pumped("pump()");
  int busy = 0;
  if (polling_) {
    set_polling(false);
    if (poll_all()) ++busy;
  }
  while (busy < max_rounds && dispatch_once(0) > 0) ++busy;
  return busy;
}

bool EventLoop::poll_once() {
  require_caller_pumped("poll_once()");
  set_polling(true);
  return poll_all();
}

void EventLoop::wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard lock(tasks_mutex_);
    if (stopped_) throw Error("event loop " + name_ + ": post after stop");
    tasks_.push_back(std::move(task));
  }
  wake();
}

void EventLoop::run_sync(const std::function<void()>& task) {
  if (on_loop_thread()) {
    task();
    return;
  }
  if (caller_pumped()) {
    // Nobody would run it: the loop's only thread is the one not calling.
    throw Error("event loop " + name_ + ": run_sync from another thread on a caller-pumped loop");
  }
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  post([&task, &done] {
    try {
      task();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  finished.get();
}

EventLoop::Handle EventLoop::add(int fd, std::function<void()> on_readable) {
  Handle handle = 0;
  run_sync([&] {
    handle = next_handle_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = handle;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      throw sys_error("event loop " + name_ + ": epoll_ctl add fd " + std::to_string(fd));
    }
    callbacks_.emplace(handle, Registration{fd, std::make_shared<const std::function<void()>>(
                                                    std::move(on_readable))});
  });
  return handle;
}

void EventLoop::remove(Handle handle) {
  run_sync([&] {
    auto it = callbacks_.find(handle);
    if (it == callbacks_.end()) return;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    callbacks_.erase(it);
  });
}

EventLoop::Handle EventLoop::add_poller(Poller poller) {
  Handle handle = 0;
  run_sync([&] {
    handle = next_handle_++;
    pollers_.emplace(handle, std::move(poller));
  });
  return handle;
}

void EventLoop::remove_poller(Handle handle) {
  run_sync([&] {
    auto it = pollers_.find(handle);
    if (it == pollers_.end()) return;
    if (polling_ && it->second.set_polling) it->second.set_polling(false);
    pollers_.erase(it);
  });
}

void EventLoop::set_polling(bool polling) {
  if (polling_ == polling) return;
  polling_ = polling;
  for (auto& [handle, poller] : pollers_) {
    if (poller.set_polling) poller.set_polling(polling);
  }
}

bool EventLoop::poll_all() {
  bool found = false;
  // pollers_ only changes in posted tasks (run_sync), never in poll().
  for (auto& [handle, poller] : pollers_) found |= poller.poll();
  return found;
}

bool EventLoop::poll_for_work() {
  if (pollers_.empty() || poll_window_.current().count() == 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + poll_window_.current();
  set_polling(true);
  do {
    if (poll_all()) return true;
  } while (std::chrono::steady_clock::now() < deadline);
  set_polling(false);
  return poll_all();  // what arrived while notifications were off
}

void EventLoop::run_posted_tasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(tasks_mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) {
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("event loop {}: posted task failed: {}", name_, e.what());
    }
  }
}

int EventLoop::dispatch_once(int timeout_ms) {
  std::array<epoll_event, 32> events{};
  const int n = ::epoll_wait(epoll_.get(), events.data(), events.size(), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    spdlog::critical("event loop {}: epoll_wait: {}", name_, std::strerror(errno));
    return -1;
  }
  for (int i = 0; i < n; ++i) {
    const Handle handle = events[i].data.u64;
    if (handle == kWakeHandle) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_.get(), &count, sizeof(count));
      run_posted_tasks();
      continue;
    }
    // Looked up per event: an earlier callback in this batch may have
    // removed this registration.
    auto it = callbacks_.find(handle);
    if (it == callbacks_.end()) continue;
    const int fd = it->second.fd;
    const auto callback = it->second.on_readable;  // held: it may remove itself
    try {
      (*callback)();
    } catch (const std::exception& e) {
      spdlog::error("event loop {}: callback for fd {} failed: {}", name_, fd, e.what());
    }
  }
  return n;
}

void EventLoop::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    const auto start = std::chrono::steady_clock::now();
    if (poll_for_work()) {
      // Found work without sleeping: serve ready fds and posted tasks, then
      // poll again.
      if (dispatch_once(0) < 0) break;
      continue;
    }
    if (dispatch_once(-1) < 0) break;
    poll_window_.after_sleep(std::chrono::steady_clock::now() - start);
  }
  set_polling(false);
  // Tasks posted before stop still run so no run_sync caller waits forever.
  {
    std::lock_guard lock(tasks_mutex_);
    stopped_ = true;
  }
  run_posted_tasks();
}

}  // namespace minivmm
