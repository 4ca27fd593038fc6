// How many connections the whole process may hold open, shared by every worker thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <utility>

namespace printerfacts {

/// The open connections of a group of listeners against one limit, whatever the number of
/// worker threads: exactly `limit` connections are admitted however unevenly the kernel hands
/// them to the workers (a share per worker refused early on one while another sat idle).
/// Thread-safe; one atomic operation per connection, none per request.
class ConnectionBudget {
 public:
  explicit ConnectionBudget(std::size_t limit) : limit_(limit) {}
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  /// One connection's place, given back when it is destroyed. Empty when none was left.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : budget_(std::exchange(other.budget_, nullptr)) {}
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        release();
        budget_ = std::exchange(other.budget_, nullptr);
      }
      return *this;
    }
    ~Slot() { release(); }
    explicit operator bool() const { return budget_ != nullptr; }

   private:
    friend class ConnectionBudget;
    explicit Slot(ConnectionBudget* budget) : budget_(budget) {}
    void release() {
      if (budget_ != nullptr) budget_->open_.fetch_sub(1, std::memory_order_relaxed);
      budget_ = nullptr;
    }
    ConnectionBudget* budget_ = nullptr;
  };

  /// A place for one more connection, or an empty Slot at the limit. A compare-and-swap, not
  /// an add-then-undo: a transient count above the limit would refuse a connection that fits.
  Slot take() {
    std::size_t open = open_.load(std::memory_order_relaxed);
    do {
      if (open >= limit_) return Slot();
    } while (!open_.compare_exchange_weak(open, open + 1, std::memory_order_relaxed));
    return Slot(this);
  }

  std::size_t open() const { return open_.load(std::memory_order_relaxed); }
  std::size_t limit() const { return limit_; }

 private:
  const std::size_t limit_;
  std::atomic<std::size_t> open_{0};
};

}  // namespace printerfacts
