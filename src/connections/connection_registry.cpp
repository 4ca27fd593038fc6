#include "connections/connection_registry.hpp"

#include <vector>

namespace printerfacts {

ConnectionRegistry::Entry::Entry(ConnectionRegistry& registry, std::function<void()> close)
    : registry_(registry), close_(std::move(close)) {
  next_ = registry_.head_;
  if (next_) next_->prev_ = this;
  registry_.head_ = this;
  ++registry_.size_;
}

ConnectionRegistry::Entry::~Entry() {
  if (prev_) prev_->next_ = next_;
  else registry_.head_ = next_;
  if (next_) next_->prev_ = prev_;
  --registry_.size_;
  if (registry_.draining_ && registry_.size_ == 0 && registry_.on_drained_) registry_.on_drained_();
}

template <class Predicate>
void ConnectionRegistry::close_where(Predicate p) {
  // Closing only cancels pending operations; the coroutines resume later, from the event loop,
  // and unregister then. The list is stable while we walk it.
  for (Entry* e = head_; e != nullptr; e = e->next_) {
    if (p(*e)) e->close_();
  }
}

void ConnectionRegistry::drain() {
  draining_ = true;
  close_where([](const Entry& e) { return e.idle; });
  if (size_ == 0 && on_drained_) on_drained_();
}

void ConnectionRegistry::sweep(std::chrono::steady_clock::time_point now) {
  close_where([now](const Entry& e) { return e.deadline_ <= now; });
}

void ConnectionRegistry::close_all() {
  draining_ = true;
  close_where([](const Entry&) { return true; });
}

}  // namespace printerfacts
