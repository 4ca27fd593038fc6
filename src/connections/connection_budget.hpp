// How many connections the whole process may hold open, shared by every worker thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace printerfacts {

/// Open connections per Unix-socket peer user (--max-connections-per-uid), counted across every
/// worker, so that one member of the socket's group cannot take every connection. Consulted only
/// when a limit is set: then one short lock per connection, none per request.
class UidQuota {
 public:
  explicit UidQuota(unsigned limit) : limit_(limit) {}
  UidQuota(const UidQuota&) = delete;
  UidQuota& operator=(const UidQuota&) = delete;

  bool enabled() const { return limit_ > 0; }
  unsigned limit() const { return limit_; }

  /// One more connection of `uid`; false when it holds the limit already.
  bool take(uid_t uid) {
    std::lock_guard lock(mutex_);
    unsigned& n = open_[uid];
    if (n >= limit_) return false;
    ++n;
    return true;
  }
  void give_back(uid_t uid) {
    std::lock_guard lock(mutex_);
    // Users with nothing open leave the map: it holds at most one entry per connection.
    if (auto it = open_.find(uid); it != open_.end() && --it->second == 0) open_.erase(it);
  }

 private:
  const unsigned limit_;
  std::mutex mutex_;
  std::unordered_map<uid_t, unsigned> open_;
};

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
    Slot(Slot&& other) noexcept
        : budget_(std::exchange(other.budget_, nullptr)),
          quota_(std::exchange(other.quota_, nullptr)),
          uid_(other.uid_) {}
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        release();
        budget_ = std::exchange(other.budget_, nullptr);
        quota_ = std::exchange(other.quota_, nullptr);
        uid_ = other.uid_;
      }
      return *this;
    }
    ~Slot() { release(); }
    explicit operator bool() const { return budget_ != nullptr; }

    /// Also takes a place of `uid` in `quota`, given back with this one; false when the user
    /// holds its limit already.
    bool hold_uid(UidQuota& quota, uid_t uid) {
      if (!quota.take(uid)) return false;
      quota_ = &quota;
      uid_ = uid;
      return true;
    }

   private:
    friend class ConnectionBudget;
    explicit Slot(ConnectionBudget* budget) : budget_(budget) {}
    void release() {
      if (budget_ != nullptr) budget_->open_.fetch_sub(1, std::memory_order_relaxed);
      if (quota_ != nullptr) quota_->give_back(uid_);
      budget_ = nullptr;
      quota_ = nullptr;
    }
    ConnectionBudget* budget_ = nullptr;
    UidQuota* quota_ = nullptr;
    uid_t uid_ = 0;
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
