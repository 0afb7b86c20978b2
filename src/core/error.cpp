#include "core/error.hpp"

namespace vtunnel {
namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vtunnel"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::eof: return "end of stream";
      case errc::timed_out: return "timed out";
      case errc::cancelled: return "operation cancelled";
      case errc::closed: return "closed";
      case errc::limit_exceeded: return "limit exceeded";
      case errc::resolve_failed: return "name resolution failed";
    }
    return "unknown vtunnel error";
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}
}  // namespace vtunnel
