#include "connections/connection_registry.hpp"

#include <vector>

namespace printerfacts {

ConnectionRegistry::Entry::Entry(ConnectionRegistry& registry, std::function<void(Stop)> stop)
    : registry_(registry), stop_(std::move(stop)) {
  next_ = registry_.head_;
  if (next_) next_->prev_ = this;
  registry_.head_ = this;
  ++registry_.size_;
}

ConnectionRegistry::Entry::~Entry() {
  if (prev_)
    prev_->next_ = next_;
  else
    registry_.head_ = next_;
  if (next_) next_->prev_ = prev_;
  --registry_.size_;
  if (registry_.draining_ && registry_.size_ == 0 && registry_.on_drained_) registry_.on_drained_();
}

template <class Predicate>
void ConnectionRegistry::stop_where(Predicate p, Stop how) {
  // Closing or cancelling only cancels pending operations; the coroutines resume later, from
  // the event loop, and unregister then. The list is stable while we walk it.
  for (Entry* e = head_; e != nullptr; e = e->next_) {
    if (p(*e)) e->stop_(how);
  }
}

void ConnectionRegistry::drain() {
  draining_ = true;
  // Woken rather than closed: a request may have arrived just now, and closing a socket with
  // unread input makes the kernel answer the client with a reset.
  stop_where([](const Entry& e) { return e.idle; }, Stop::wake);
  if (size_ == 0 && on_drained_) on_drained_();
}

void ConnectionRegistry::sweep(CoarseClock::time_point now) {
  stop_where([now](const Entry& e) { return e.deadline_ <= now; }, Stop::close);
}

void ConnectionRegistry::close_all() {
  draining_ = true;
  stop_where([](const Entry&) { return true; }, Stop::close);
}

}  // namespace printerfacts
