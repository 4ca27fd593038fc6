// Request-scoped memory: the header fields of a request and of its response are allocated from
// an arena that takes fixed-size blocks from its worker's pool and gives them all back when the
// request ends, so a request in the steady state never calls malloc (nginx's request pool).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <vector>

namespace printerfacts {

/// Free blocks of kBlockSize bytes, kept for reuse by one worker's arenas. Not thread-safe: one
/// per worker thread.
class BlockPool {
 public:
  static constexpr std::size_t kBlockSize = 4096;

  BlockPool() = default;
  /// Keeps at most `keep` free blocks; blocks given back beyond that are freed.
  explicit BlockPool(std::size_t keep) : keep_(keep) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool();

  void* take();
  void give(void* block) noexcept;

 private:
  std::vector<void*> free_;
  std::size_t keep_ = 64;
};

/// A bump allocator over pool blocks. Deallocation is a no-op; everything is released at once
/// when the arena is destroyed. Requests larger than a block get their own allocation.
class Arena {
 public:
  explicit Arena(BlockPool& pool) noexcept : pool_(&pool) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena();

  void* allocate(std::size_t bytes, std::size_t align);

 private:
  struct Link {
    Link* next;
  };
  static constexpr std::size_t kHeader = alignof(std::max_align_t);

  BlockPool* pool_;
  char* cursor_ = nullptr;
  char* end_ = nullptr;
  Link* blocks_ = nullptr;  ///< pool blocks in use, chained through their first bytes
  Link* large_ = nullptr;   ///< oversized allocations, chained the same way
};

/// A standard allocator over an Arena; default-constructed, it uses the heap. Copies share the
/// arena, and containers take it along when moved or assigned.
template <class T>
class ArenaAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;

  ArenaAllocator() noexcept = default;
  explicit ArenaAllocator(Arena* arena) noexcept : arena_(arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena_(other.arena()) {}

  T* allocate(std::size_t n) {
    if (arena_ == nullptr) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(arena_->allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (arena_ == nullptr) ::operator delete(p);
  }

  Arena* arena() const noexcept { return arena_; }

  template <class U>
  bool operator==(const ArenaAllocator<U>& other) const noexcept {
    return arena_ == other.arena();
  }

 private:
  Arena* arena_ = nullptr;
};

}  // namespace printerfacts
