#pragma once
// Cancellation. Every task chain runs under a StopState; the leaf operation it is suspended in
// (an io_uring op, a timer, a wait on an event) registers itself as the state's `current`
// cancellable. request_stop() cancels that leaf and every linked child state. Cancelling never
// resumes a coroutine inline: the leaf completes through the loop's ready queue, so the caller
// of request_stop() can go on touching its own state safely.
namespace vtunnel {

class Cancellable {
 public:
  // Asks the pending operation to finish early. It must still complete (resume its waiter)
  // exactly once, later, from the loop; the result may be "cancelled" or a real result that
  // raced with the cancel.
  virtual void cancel() noexcept = 0;

 protected:
  ~Cancellable() = default;
};

class StopState {
 public:
  StopState() noexcept = default;
  // A child is stopped whenever its parent is (and at once, if the parent already is).
  explicit StopState(StopState* parent) noexcept { link(parent); }
  StopState(const StopState&) = delete;
  StopState& operator=(const StopState&) = delete;
  ~StopState();

  bool stop_requested() const noexcept { return stopped_; }
  void request_stop() noexcept;

  // Registration of the leaf this task chain is suspended in.
  void set_current(Cancellable* leaf) noexcept { current_ = leaf; }
  void clear_current(Cancellable* leaf) noexcept {
    if (current_ == leaf) current_ = nullptr;
  }

  void link(StopState* parent) noexcept;
  void unlink() noexcept;

 private:
  bool stopped_ = false;
  Cancellable* current_ = nullptr;
  StopState* parent_ = nullptr;
  StopState* first_child_ = nullptr;
  StopState* next_sibling_ = nullptr;
  StopState* prev_sibling_ = nullptr;
};

}  // namespace vtunnel
