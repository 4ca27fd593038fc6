#include "connections/admission.hpp"

namespace printerfacts {

void log_connection_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection failed: {}", ex.what());
  }
}

}  // namespace printerfacts
