#include "util/arena.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <string>

namespace printerfacts {
namespace {

namespace http = boost::beast::http;

bool aligned(const void* p, std::size_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

TEST(ArenaTest, AllocationsAreAlignedAndDistinct) {
  BlockPool pool;
  Arena arena(pool);
  char* a = static_cast<char*>(arena.allocate(3, 1));
  auto* b =
      static_cast<std::uint64_t*>(arena.allocate(sizeof(std::uint64_t), alignof(std::uint64_t)));
  char* c = static_cast<char*>(arena.allocate(100, 16));
  EXPECT_TRUE(aligned(b, alignof(std::uint64_t)));
  EXPECT_TRUE(aligned(c, 16));
  EXPECT_GE(reinterpret_cast<char*>(b), a + 3);
  EXPECT_GE(c, reinterpret_cast<char*>(b + 1));
}

TEST(ArenaTest, BlocksGoBackToThePoolAndAreReused) {
  BlockPool pool;
  void* first = nullptr;
  {
    Arena arena(pool);
    first = arena.allocate(64, 8);
  }
  Arena again(pool);
  EXPECT_EQ(again.allocate(64, 8), first) << "the next request reuses the block: no malloc";
}

TEST(ArenaTest, SpillsIntoMoreBlocksAndOversizedAllocations) {
  BlockPool pool;
  Arena arena(pool);
  // More than one block's worth, and one allocation larger than any block.
  for (int i = 0; i < 100; ++i) {
    auto* p = static_cast<char*>(arena.allocate(100, 8));
    std::fill(p, p + 100, 'x');
  }
  auto* big = static_cast<char*>(arena.allocate(3 * BlockPool::kBlockSize, 16));
  EXPECT_TRUE(aligned(big, 16));
  std::fill(big, big + 3 * BlockPool::kBlockSize, 'y');  // ASan would catch an overrun
}

TEST(ArenaTest, DefaultConstructedAllocatorUsesTheHeap) {
  ArenaAllocator<int> heap;
  int* p = heap.allocate(4);
  p[3] = 7;
  heap.deallocate(p, 4);  // LeakSanitizer would report it if this did not free
  EXPECT_EQ(heap.arena(), nullptr);
  BlockPool pool;
  Arena arena(pool);
  EXPECT_FALSE(ArenaAllocator<char>(&arena) == heap);
  EXPECT_TRUE(ArenaAllocator<char>(&arena) == ArenaAllocator<int>(&arena));
}

TEST(ArenaTest, BeastParsesARequestWithItsFieldsInTheArena) {
  BlockPool pool;
  Arena arena(pool);
  http::request_parser<http::string_body, ArenaAllocator<char>> parser(
      std::piecewise_construct, std::make_tuple(), std::make_tuple(ArenaAllocator<char>(&arena)));
  std::string raw = "GET /fact HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 50; ++i)
    raw += "X-Field-" + std::to_string(i) + ": value " + std::to_string(i) + "\r\n";
  raw += "X-Large: " + std::string(6000, 'v') + "\r\n\r\n";
  boost::beast::error_code ec;
  parser.header_limit(16384);
  parser.put(boost::asio::buffer(raw), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_done());
  const auto& req = parser.get();
  EXPECT_EQ(req[http::field::host], "x");
  EXPECT_EQ(req["X-Field-49"], "value 49");
  EXPECT_EQ(req["X-Large"].size(), 6000u);
  EXPECT_EQ(req.get_allocator().arena(), &arena);
}

}  // namespace
}  // namespace printerfacts
