#include "util/arena.hpp"

#include <cstdint>
#include <cstdlib>

namespace printerfacts {

BlockPool::~BlockPool() {
  for (void* b : free_) std::free(b);
}

void* BlockPool::take() {
  if (free_.empty()) {
    void* b = std::malloc(kBlockSize);
    if (b == nullptr) throw std::bad_alloc();
    return b;
  }
  void* b = free_.back();
  free_.pop_back();
  return b;
}

void BlockPool::give(void* block) noexcept {
  if (free_.size() < keep_) {
    try {
      free_.push_back(block);
      return;
    } catch (...) {  // no room to remember it: free it instead
    }
  }
  std::free(block);
}

Arena::~Arena() {
  while (blocks_ != nullptr) {
    Link* next = blocks_->next;
    pool_->give(blocks_);
    blocks_ = next;
  }
  while (large_ != nullptr) {
    Link* next = large_->next;
    std::free(large_);
    large_ = next;
  }
}

void* Arena::allocate(std::size_t bytes, std::size_t align) {
  auto aligned = [align](char* p) {
    const auto v = reinterpret_cast<std::uintptr_t>(p);
    return reinterpret_cast<char*>((v + align - 1) & ~(std::uintptr_t{align} - 1));
  };
  if (cursor_ != nullptr) {
    char* p = aligned(cursor_);
    if (p + bytes <= end_) {
      cursor_ = p + bytes;
      return p;
    }
  }
  if (bytes + align > BlockPool::kBlockSize - kHeader) {
    // Larger than a block (an 8 KiB header field): its own allocation, freed with the arena.
    void* raw = std::malloc(kHeader + bytes + align);
    if (raw == nullptr) throw std::bad_alloc();
    auto* link = static_cast<Link*>(raw);
    link->next = large_;
    large_ = link;
    return aligned(static_cast<char*>(raw) + kHeader);
  }
  auto* link = static_cast<Link*>(pool_->take());
  link->next = blocks_;
  blocks_ = link;
  char* p = aligned(reinterpret_cast<char*>(link) + kHeader);
  end_ = reinterpret_cast<char*>(link) + BlockPool::kBlockSize;
  cursor_ = p + bytes;
  return p;
}

}  // namespace printerfacts
