// A pair of iterators usable in a range-for: std::ranges::subrange without the concepts, which
// clang 14 cannot check against libstdc++ 12 (the fuzz build uses clang).
#pragma once

namespace printerfacts {

template <class Iterator>
struct IteratorRange {
  Iterator first;
  Iterator last;
  Iterator begin() const { return first; }
  Iterator end() const { return last; }
};

template <class Iterator>
IteratorRange(Iterator, Iterator) -> IteratorRange<Iterator>;

}  // namespace printerfacts
