#include "common/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace minivmm {
namespace {

void signal(int fd) {
  const uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, sizeof(one)), 8);
}

TEST(EventLoop, RunsCallbackOnLoopThreadWhenFdReadable) {
  EventLoop loop("test");
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK));
  std::promise<std::thread::id> ran;
  auto handle = loop.add(fd.get(), [&] {
    uint64_t n;
    ASSERT_EQ(::read(fd.get(), &n, sizeof(n)), 8);
    ran.set_value(std::this_thread::get_id());
  });
  signal(fd.get());
  auto fut = ran.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_NE(fut.get(), std::this_thread::get_id());
  loop.remove(handle);
}

TEST(EventLoop, RemovedCallbackNeverRunsAgain) {
  EventLoop loop("test");
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK));
  std::atomic<int> calls{0};
  auto handle = loop.add(fd.get(), [&] {
    uint64_t n;
    [[maybe_unused]] auto r = ::read(fd.get(), &n, sizeof(n));
    ++calls;
  });
  loop.remove(handle);
  signal(fd.get());
  loop.run_sync([] {});  // any wakeup for the fd would have been handled by now
  loop.run_sync([] {});
  EXPECT_EQ(calls.load(), 0);
}

// The callback's own state (a string too long for small-string storage, so
// freeing it early would show under ASan or as garbage) must outlive a
// remove() the callback makes of itself.
TEST(EventLoop, CallbackMayRemoveItselfAndKeepsItsStateUntilItReturns) {
  EventLoop loop("test");
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK));
  EventLoop::Handle handle = 0;
  std::promise<std::string> seen;
  const std::string label(64, 'x');
  handle = loop.add(fd.get(), [&, label] {
    uint64_t n;
    [[maybe_unused]] auto r = ::read(fd.get(), &n, sizeof(n));
    loop.remove(handle);
    seen.set_value(label);  // reads the capture after its registration is gone
  });
  signal(fd.get());
  auto fut = seen.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(fut.get(), label);
}

TEST(EventLoop, PostAndRunSyncExecuteOnLoopThread) {
  EventLoop loop("test");
  bool on_loop = false;
  loop.run_sync([&] { on_loop = loop.on_loop_thread(); });
  EXPECT_TRUE(on_loop);
  EXPECT_FALSE(loop.on_loop_thread());
  std::promise<void> posted;
  loop.post([&] { posted.set_value(); });
  EXPECT_EQ(posted.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

TEST(EventLoop, RunSyncRethrowsAndLoopSurvives) {
  EventLoop loop("test");
  EXPECT_THROW(loop.run_sync([] { throw std::runtime_error("boom"); }), std::runtime_error);
  int value = 0;
  loop.run_sync([&] { value = 7; });
  EXPECT_EQ(value, 7);
}

TEST(EventLoop, RunSyncFromLoopThreadRunsInline) {
  EventLoop loop("test");
  int depth = 0;
  loop.run_sync([&] { loop.run_sync([&] { depth = 2; }); });
  EXPECT_EQ(depth, 2);
}

TEST(EventLoop, CallerPumpedLoopRunsOnlyWhenPumped) {
  EventLoop loop("test", EventLoop::Threading::CallerPumped);
  EXPECT_TRUE(loop.caller_pumped());
  EXPECT_TRUE(loop.on_loop_thread());
  UniqueFd first(::eventfd(0, EFD_NONBLOCK));
  UniqueFd second(::eventfd(0, EFD_NONBLOCK));
  std::vector<int> order;
  // The first callback makes the second fd readable: one pump() runs both.
  auto h1 = loop.add(first.get(), [&] {
    uint64_t n;
    ASSERT_EQ(::read(first.get(), &n, sizeof(n)), 8);
    order.push_back(1);
    signal(second.get());
  });
  auto h2 = loop.add(second.get(), [&] {
    uint64_t n;
    ASSERT_EQ(::read(second.get(), &n, sizeof(n)), 8);
    order.push_back(2);
  });
  signal(first.get());
  bool posted = false;
  loop.post([&] { posted = true; });
  EXPECT_TRUE(order.empty());  // nothing runs behind the caller's back
  EXPECT_FALSE(posted);
  EXPECT_GE(loop.pump(), 1);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_TRUE(posted);
  EXPECT_EQ(loop.pump(), 0);  // idle
  loop.remove(h1);
  loop.remove(h2);
}

// What a thread other than a caller-pumped loop's owner may not do.
void expect_foreign_thread_refused(EventLoop& loop) {
  EXPECT_FALSE(loop.on_loop_thread());
  EXPECT_THROW(loop.run_sync([] {}), std::exception);  // would wait forever
  EXPECT_THROW(loop.pump(), std::exception);
}

TEST(EventLoop, CallerPumpedLoopRefusesForeignThreads) {
  EventLoop loop("test", EventLoop::Threading::CallerPumped);
  std::thread other([&] { expect_foreign_thread_refused(loop); });
  other.join();
  EventLoop threaded("test");
  EXPECT_THROW(threaded.pump(), std::exception);
}

// device_bench --same-thread: the caller polls in place of a loop thread.
// Polling stays on (notifications suppressed) across poll_once() calls, and
// the next pump() switches it off and polls once more for what raced.
TEST(EventLoop, CallerPumpedLoopPollsOnceWithPollingOnUntilPumped) {
  EventLoop loop("test", EventLoop::Threading::CallerPumped);
  int polls = 0;
  bool work = false;
  std::vector<bool> switches;
  const auto h = loop.add_poller({[&] {
                                    ++polls;
                                    return std::exchange(work, false);
                                  },
                                  [&](bool polling) { switches.push_back(polling); }});
  EXPECT_FALSE(loop.poll_once());
  work = true;
  EXPECT_TRUE(loop.poll_once());
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(switches, (std::vector<bool>{true}));  // switched on once, not per call
  work = true;
  EXPECT_EQ(loop.pump(), 1);  // the poll after switching off found the work
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(switches, (std::vector<bool>{true, false}));
  EXPECT_EQ(loop.pump(), 0);  // polling off: pollers no longer run
  EXPECT_EQ(polls, 3);
  loop.remove_poller(h);
  EventLoop threaded("test");
  EXPECT_THROW(threaded.poll_once(), std::exception);
}

TEST(EventLoop, CallerPumpedLoopRunsLeftoverTasksAtDestruction) {
  bool ran = false;
  {
    EventLoop loop("test", EventLoop::Threading::CallerPumped);
    loop.post([&] { ran = true; });
  }
  EXPECT_TRUE(ran);
}

using std::chrono::microseconds;

TEST(PollWindow, GrowsWhileSleepsAreShortAndStopsWhenIdle) {
  PollWindow w(microseconds(32));
  EXPECT_EQ(w.current(), microseconds(0));
  w.after_sleep(microseconds(10));  // short sleep: start polling
  EXPECT_EQ(w.current(), PollWindow::kGrowStart);
  w.after_sleep(microseconds(10));
  EXPECT_EQ(w.current(), microseconds(8));
  w.after_sleep(microseconds(5));  // polling caught it: no change
  EXPECT_EQ(w.current(), microseconds(8));
  for (int i = 0; i < 5; ++i) w.after_sleep(microseconds(20));
  EXPECT_EQ(w.current(), microseconds(32));     // capped at the maximum
  w.after_sleep(std::chrono::milliseconds(5));  // idle
  EXPECT_EQ(w.current(), microseconds(0));
  PollWindow off(microseconds(0));
  off.after_sleep(microseconds(1));
  EXPECT_EQ(off.current(), microseconds(0));
}

// poll_then_sleep: a closed window sleeps at once (ready is never called);
// a short sleep opens it; work that turns up within the window is found by
// polling, without the sleep.
TEST(PollWindow, PollThenSleepSleepsWhenClosedAndPollsOnceOpen) {
  PollWindow w(std::chrono::milliseconds(50));
  int ready_calls = 0, sleeps = 0;
  EXPECT_FALSE(w.poll_then_sleep([&] { return ++ready_calls, false; }, [&] { ++sleeps; }));
  EXPECT_EQ(ready_calls, 0);
  EXPECT_EQ(sleeps, 1);
  EXPECT_EQ(w.current(), PollWindow::kGrowStart);  // the sleep was short
  for (int i = 0; i < 20; ++i) w.after_sleep(std::chrono::milliseconds(1));
  EXPECT_GE(w.current(), std::chrono::milliseconds(1));
  int calls_until_ready = 3;
  EXPECT_TRUE(w.poll_then_sleep([&] { return --calls_until_ready == 0; }, [&] { ++sleeps; }));
  EXPECT_EQ(calls_until_ready, 0);
  EXPECT_EQ(sleeps, 1);
}

// Work that no fd announces is found by polling, once recent sleeps were
// short; after that the loop goes idle and stops calling the poller.
TEST(EventLoop, PollerFindsWorkWithoutAnEventThenIdlesWithoutPolling) {
  EventLoop loop("poll-test", EventLoop::Threading::OwnThread, std::chrono::milliseconds(1));
  std::atomic<bool> work{false};
  std::atomic<int> found{0}, calls{0}, polling_on{0};
  const auto h = loop.add_poller({[&] {
                                    ++calls;
                                    if (!work.exchange(false)) return false;
                                    ++found;
                                    return true;
                                  },
                                  [&](bool polling) {
                                    if (polling) ++polling_on;
                                  }});
  // Posted tasks every ~100 us teach the window to grow; right after one,
  // the loop polls, and only polling can see `work`.
  for (int i = 0; i < 2000 && found == 0; ++i) {
    loop.post([] {});
    work = true;
    std::this_thread::sleep_for(microseconds(100));
  }
  EXPECT_GT(found.load(), 0);
  EXPECT_GT(polling_on.load(), 0);
  work = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // idle
  const int before = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(calls.load(), before) << "an idle loop kept polling";
  loop.remove_poller(h);
}

}  // namespace
}  // namespace minivmm
