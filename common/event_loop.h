// One epoll loop on its own thread. Device data paths (queue notifications,
// disk completions) run here so each device's queues are single-threaded;
// vCPU threads hand work over with post() or run_sync().
// A caller-pumped loop has no thread: the thread that made it is the loop
// thread and dispatches with pump(). The fuzz target uses it so one input
// runs deterministically and without a thread hand-off per step.
//
// Adaptive polling (QEMU's AioContext poll-max-ns idea): before sleeping in
// epoll_wait, an own-thread loop calls its pollers (cheap memory checks:
// a virtqueue's avail idx, an io_uring completion queue) for up to
// poll_ns. Waking a sleeping thread costs microseconds and, for a guest, a
// notify exit; polling catches the next request without either. poll_ns
// tunes itself from how long the loop then slept (PollWindow): it grows
// while sleeps are short and drops to 0 after one longer than the maximum,
// so an idle VM costs no CPU.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/poll_window.h"
#include "common/unique_fd.h"

namespace minivmm {

class EventLoop {
 public:
  using Handle = uint64_t;

  enum class Threading { OwnThread, CallerPumped };

  // What a device polls with. `poll` does the work it finds and returns
  // whether there was any; `set_polling(true)` says the loop is polling
  // (the device may suppress guest notifications), `set_polling(false)`
  // that it is about to sleep (notifications on again; poll runs once more
  // after it, so nothing that raced with the switch is missed).
  struct Poller {
    std::function<bool()> poll;
    std::function<void(bool polling)> set_polling;
  };

  // poll_max 0: never poll (sleep in epoll_wait at once, as before).
  explicit EventLoop(std::string name = "virtio-loop", Threading threading = Threading::OwnThread,
                     std::chrono::nanoseconds poll_max = PollWindow::kDefaultMax);
  ~EventLoop();  // stops and joins the thread (runs what is still posted)
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `on_readable` on the loop thread whenever `fd` is readable
  // (level-triggered: the callback must consume what made it readable).
  // Callable from any thread.
  Handle add(int fd, std::function<void()> on_readable);
  // After remove() returns the callback is not running and never runs again.
  void remove(Handle handle);
  // Callable from any thread; remove_poller() as remove().
  Handle add_poller(Poller poller);
  void remove_poller(Handle handle);

  // Runs `task` on the loop thread soon; callable from any thread.
  void post(std::function<void()> task);
  // Runs `task` on the loop thread and waits for it (inline when already on
  // it); rethrows what the task threw.
  void run_sync(const std::function<void()>& task);

  bool on_loop_thread() const;
  bool caller_pumped() const { return !thread_.joinable(); }

  // Caller-pumped loops only, from the loop thread: dispatches what is ready
  // until nothing is (eventfds written by the callbacks included), at most
  // `max_rounds` epoll rounds; returns the number of rounds that did work.
  // When poll_once() had switched polling on, pump() switches it off and
  // polls once more, so nothing that raced with the switch is missed (as
  // the own-thread loop does).
  int pump(int max_rounds = 1000);
  // Caller-pumped loops only, from the loop thread: the caller polls in
  // place of a loop thread. Switches polling on (devices may suppress guest
  // notifications until the next pump()), calls every poller once and
  // returns whether one found work. device_bench --same-thread serves
  // requests this way, on the driver's thread.
  bool poll_once();

 private:
  void run(std::stop_token stop);
  // Polls for up to the current window; true when a poller found work.
  bool poll_for_work();
  bool poll_all();
  void require_caller_pumped(const char* what) const;
  void set_polling(bool polling);
  // One epoll_wait (timeout_ms as epoll's) and its callbacks; returns the
  // number of events, or -1 when epoll_wait failed other than by EINTR.
  int dispatch_once(int timeout_ms);
  void run_posted_tasks();
  void wake();

  std::string name_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;
  std::mutex tasks_mutex_;
  std::vector<std::function<void()>> tasks_;
  bool stopped_ = false;  // guarded by tasks_mutex_
  // Loop-thread only: registrations by handle (handle 0 is the wake fd).
  // Shared, so dispatch can hold a callback that removes itself while it
  // runs without copying the std::function per event.
  struct Registration {
    int fd;
    std::shared_ptr<const std::function<void()>> on_readable;
  };
  std::unordered_map<Handle, Registration> callbacks_;
  Handle next_handle_ = 1;                      // loop-thread only
  std::unordered_map<Handle, Poller> pollers_;  // loop-thread only
  PollWindow poll_window_;                      // loop-thread only
  bool polling_ = false;                        // loop-thread only: set_polling(true) in force
  std::thread::id owner_;                       // the loop thread of a caller-pumped loop
  std::jthread thread_;                         // last: starts after every member above exists
};

}  // namespace minivmm
