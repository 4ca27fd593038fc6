// In-process cost of one request: Beast parses the raw bytes, the router answers, and the head is
// rendered as the connection renders it (Response::render_head), into reused buffers. No
// sockets. Reports allocations per request.
//   printerfacts_micro_bench                  Google Benchmark suite
//   printerfacts_micro_bench --iterations N   runs the /fact path N times and exits (callgrind)
#include <benchmark/benchmark.h>

#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "connections/http_date.hpp"
#include "connections/request_parser.hpp"
#include "routing/router.hpp"

namespace {

std::atomic<std::uint64_t> g_allocations{0};

}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace printerfacts {
namespace {

namespace beast = boost::beast;

/// One request through parse → route → serialize, as the connection does it.
class Pipeline {
 public:
  explicit Pipeline(std::string_view raw) : raw_(raw) { out_.reserve(8192); }

  std::size_t run_once() {
    Arena arena(pool_);
    RequestParser parser(arena);
    beast::error_code ec;
    parser.put(boost::asio::buffer(raw_.data(), raw_.size()), ec);
    Response res = router_.route(parser.get(), rng_);
    out_.clear();
    res.render_head(date_.now(), "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n", head_);
    out_.append(head_);
    const auto body = res.body_in_memory();
    out_.append(static_cast<const char*>(body.data()), body.size());
    return out_.size();
  }

 private:
  Content content_{Facts::embedded(), StaticFiles::embedded()};
  Router router_{content_};
  Random rng_{42};
  BlockPool pool_;
  HttpDate date_;
  std::string raw_;
  std::string head_;
  std::string out_;
};

void run(benchmark::State& state, std::string_view raw) {
  Pipeline p(raw);
  for (int i = 0; i < 100; ++i) p.run_once();  // warm-up: caches, lazily built state
  const auto before = g_allocations.load();
  std::size_t bytes = 0;
  for (auto _ : state) bytes += p.run_once();
  state.counters["allocs_per_request"] =
      static_cast<double>(g_allocations.load() - before) / static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

constexpr std::string_view kFact =
    "GET /fact HTTP/1.1\r\nHost: localhost\r\nUser-Agent: h2load\r\n\r\n";

void BM_Fact(benchmark::State& s) {
  run(s, kFact);
}
void BM_Index(benchmark::State& s) {
  run(s, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
}
void BM_Static(benchmark::State& s) {
  run(s, "GET /static/style.css HTTP/1.1\r\nHost: localhost\r\n\r\n");
}
void BM_NotFound(benchmark::State& s) {
  run(s, "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n");
}
BENCHMARK(BM_Fact);
BENCHMARK(BM_Index);
BENCHMARK(BM_Static);
BENCHMARK(BM_NotFound);

}  // namespace
}  // namespace printerfacts

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--iterations") == 0) {
    printerfacts::Pipeline p(printerfacts::kFact);
    const long n = std::atol(argv[2]);
    std::size_t bytes = 0;
    for (long i = 0; i < n; ++i) bytes += p.run_once();
    return bytes > 0 ? 0 : 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
