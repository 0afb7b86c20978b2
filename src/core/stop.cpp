#include "core/stop.hpp"

namespace vtunnel {

StopState::~StopState() {
  unlink();
  while (StopState* c = first_child_) c->unlink();
}

void StopState::request_stop() noexcept {
  if (stopped_) return;
  stopped_ = true;
  if (Cancellable* leaf = current_) {
    current_ = nullptr;
    leaf->cancel();
  }
  for (StopState* c = first_child_; c; c = c->next_sibling_) c->request_stop();
}

void StopState::link(StopState* parent) noexcept {
  unlink();
  if (!parent) return;
  parent_ = parent;
  next_sibling_ = parent->first_child_;
  if (next_sibling_) next_sibling_->prev_sibling_ = this;
  parent->first_child_ = this;
  if (parent->stopped_) request_stop();
}

void StopState::unlink() noexcept {
  if (!parent_) return;
  if (prev_sibling_) {
    prev_sibling_->next_sibling_ = next_sibling_;
  } else {
    parent_->first_child_ = next_sibling_;
  }
  if (next_sibling_) next_sibling_->prev_sibling_ = prev_sibling_;
  parent_ = next_sibling_ = prev_sibling_ = nullptr;
}

}  // namespace vtunnel
