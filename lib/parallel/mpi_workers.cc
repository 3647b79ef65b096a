// Workers over MPI's world communicator (compiled only when CMake finds an MPI): sums, gathers and the abort.
#include <mpi.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "parallel/workers.h"
#include "util/errors.h"

namespace charlm {
namespace {

int CountOf(std::size_t n) {
  // One collective per buffer: a model of 2^31 floats (8 GB) is far beyond what this trainer targets.
  if (n > static_cast<std::size_t>(INT32_MAX)) throw UserError("a buffer of " + std::to_string(n) + " values is too large for one MPI call");
  return static_cast<int>(n);
}

// A waiting rank tells its peers, every kBeatSeconds, which collective it waits in ("beats", on a communicator of
// their own), so that after train.stall_seconds the ranks that have neither reached it nor been heard from lately
// can be named: a rank stopped with SIGSTOP (or hung) leaves the others waiting in silence otherwise.
constexpr double kBeatSeconds = 1.0;
constexpr int kBeatTag = 1;

class MpiWorkers final : public Workers {
 public:
  MpiWorkers() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    MPI_Comm_dup(MPI_COMM_WORLD, &beat_comm_);
    // Each rank's process id and host, for the stall line.
    char host[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(host, &length);
    std::vector<char> hosts(static_cast<std::size_t>(size_) * MPI_MAX_PROCESSOR_NAME);
    MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD);
    long pid = static_cast<long>(::getpid());
    pids_.resize(static_cast<std::size_t>(size_));
    MPI_Allgather(&pid, 1, MPI_LONG, pids_.data(), 1, MPI_LONG, MPI_COMM_WORLD);
    for (int r = 0; r < size_; ++r) hosts_.emplace_back(&hosts[static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME]);
    reached_.assign(static_cast<std::size_t>(size_), 0);
    sent_.assign(static_cast<std::size_t>(size_), 0);
    received_.assign(static_cast<std::size_t>(size_), 0);
    heard_.assign(static_cast<std::size_t>(size_), Clock::time_point{});
    requests_.reserve(8);  // a step starts a few sums: no allocation inside it
  }
  ~MpiWorkers() override {
    FinishSums();
    // Every rank is here: the beats each sent are received (their counts exchanged) before the sends are completed.
    std::vector<std::int64_t> expected(static_cast<std::size_t>(size_));
    MPI_Alltoall(sent_.data(), 1, MPI_INT64_T, expected.data(), 1, MPI_INT64_T, beat_comm_);
    for (int peer = 0; peer < size_; ++peer) {
      for (auto p = static_cast<std::size_t>(peer); received_[p] < expected[p]; ++received_[p]) {
        std::int64_t value = 0;
        MPI_Recv(&value, 1, MPI_INT64_T, peer, kBeatTag, beat_comm_, MPI_STATUS_IGNORE);
      }
    }
    for (MPI_Request& request : beat_requests_) MPI_Wait(&request, MPI_STATUS_IGNORE);
    MPI_Comm_free(&beat_comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  void SetStallSeconds(double seconds) override { stall_seconds_ = seconds; }

  void SumInPlace(std::span<float> values) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Iallreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
    Wait(1, &request);
  }
  void SumInPlace(std::span<double> values) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Iallreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &request);
    Wait(1, &request);
  }
  void StartSum(std::span<float> values) override {
    MPI_Request& request = requests_.emplace_back(MPI_REQUEST_NULL);
    ++collectives_;
    MPI_Iallreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
  }
  void PollSums() override {
    if (requests_.empty()) return;
    int done = 0;
    MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE);
  }
  void FinishSums() override {
    if (requests_.empty()) return;
    --collectives_;  // Wait counts the collective it waits for: these were counted as they started
    Wait(static_cast<int>(requests_.size()), requests_.data());
    requests_.clear();
  }
  int Max(int value) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &request);
    Wait(1, &request);
    return value;
  }
  void AllGather(std::span<const float> mine, std::span<float> all) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Iallgather(mine.data(), CountOf(mine.size()), MPI_FLOAT, all.data(), CountOf(mine.size()), MPI_FLOAT,
                   MPI_COMM_WORLD, &request);
    Wait(1, &request);
  }
  void AllGather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) override {
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Iallgather(mine.data(), CountOf(mine.size()), MPI_UINT64_T, all.data(), CountOf(mine.size()), MPI_UINT64_T,
                   MPI_COMM_WORLD, &request);
    Wait(1, &request);
  }
  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] true if an MPI's did
  }

 private:
  using Clock = std::chrono::steady_clock;

  // MPI_Waitall with the watch for a stalled peer: collectives complete in microseconds to seconds, so the beats
  // begin only after kBeatSeconds, and the wait then sleeps between tests instead of spinning a core for hours.
  void Wait(int count, MPI_Request* requests) {
    ++collectives_;
    int done = 0;
    MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    if (done) return;
    Clock::time_point start = Clock::now();
    Clock::time_point last_beat = start, last_turn = start;
    bool beating = false, reported = false;
    while (!done) {
      const Clock::time_point now = Clock::now();
      if (std::chrono::duration<double>(now - last_turn).count() > kBeatSeconds) {
        // A turn of this loop takes milliseconds: this process was itself stopped (or starved) meanwhile, so its
        // wait starts again, and its peers are judged by what they say from now on, not by the beats it missed.
        start = now;
        beating = false;
      }
      last_turn = now;
      const double waited = std::chrono::duration<double>(now - start).count();
      if (waited >= kBeatSeconds) {
        if (!beating || std::chrono::duration<double>(now - last_beat).count() >= kBeatSeconds) {
          SendBeats();
          last_beat = now;
          beating = true;
        }
        DrainBeats();
        if (!reported && waited >= stall_seconds_) reported = ReportStall(waited);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE);
    }
  }

  // Tells every peer that this rank waits in collective number collectives_.
  void SendBeats() {
    CompleteSentBeats();
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_) continue;
      beat_values_.push_back(collectives_);
      MPI_Request& request = beat_requests_.emplace_back(MPI_REQUEST_NULL);
      MPI_Isend(&beat_values_.back(), 1, MPI_INT64_T, peer, kBeatTag, beat_comm_, &request);
      ++sent_[static_cast<std::size_t>(peer)];
    }
  }
  // Forgets the beats whose sends have completed (a std::deque: the values of those in flight stay where they are).
  void CompleteSentBeats() {
    while (!beat_requests_.empty()) {
      int done = 0;
      MPI_Test(&beat_requests_.front(), &done, MPI_STATUS_IGNORE);
      if (!done) break;
      beat_requests_.pop_front();
      beat_values_.pop_front();
    }
  }
  void DrainBeats() {
    for (;;) {
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kBeatTag, beat_comm_, &pending, &status);
      if (!pending) return;
      std::int64_t value = 0;
      MPI_Recv(&value, 1, MPI_INT64_T, status.MPI_SOURCE, kBeatTag, beat_comm_, MPI_STATUS_IGNORE);
      const auto peer = static_cast<std::size_t>(status.MPI_SOURCE);
      ++received_[peer];
      reached_[peer] = std::max(reached_[peer], value);
      heard_[peer] = Clock::now();
    }
  }

  // The one line naming the peers that have neither reached this collective nor beaten within stall_seconds_,
  // printed by the lowest rank of those still going, so that the job prints it once. False when no peer is
  // silent yet (a peer that waits too, for another): tried again at the next beat.
  bool ReportStall(double waited) {
    const Clock::time_point now = Clock::now();
    std::vector<int> silent;
    for (int peer = 0; peer < size_; ++peer) {
      const auto p = static_cast<std::size_t>(peer);
      const bool here = reached_[p] >= collectives_ &&
                        std::chrono::duration<double>(now - heard_[p]).count() < stall_seconds_;
      if (peer != rank_ && !here) silent.push_back(peer);
    }
    if (silent.empty()) return false;
    int lowest_going = 0;
    while (std::find(silent.begin(), silent.end(), lowest_going) != silent.end()) ++lowest_going;
    if (lowest_going != rank_) return true;
    std::string named;
    for (const int peer : silent) {
      const auto p = static_cast<std::size_t>(peer);
      named += (named.empty() ? "" : ", ") + std::string("rank ") + std::to_string(peer) + " (process " +
               std::to_string(pids_[p]) + " on " + hosts_[p] + ")";
    }
    std::fprintf(stderr,
                 "charlm: warning: %s has made no progress for %.0f s while the other processes wait for it "
                 "(train.stall_seconds %g): if it was stopped (Ctrl-Z, SIGSTOP), continue it with kill -CONT %ld; "
                 "if it hangs, end the job (Ctrl-C); the job goes on waiting\n",
                 named.c_str(), waited, stall_seconds_, pids_[static_cast<std::size_t>(silent.front())]);
    std::fflush(stderr);
    return true;
  }

  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::vector<MPI_Request> requests_;  // sums started and not yet finished
  double stall_seconds_ = 300;         // TrainConfig::stall_seconds's default until the config sets it
  MPI_Comm beat_comm_ = MPI_COMM_NULL;
  std::int64_t collectives_ = 0;                // collectives this rank has entered, the same count on every rank
  std::vector<std::int64_t> reached_;           // (size) the latest collective each peer said it waits in
  std::vector<Clock::time_point> heard_;        // (size) when each peer's latest beat arrived
  std::deque<std::int64_t> beat_values_;        // the values of beats in flight
  std::deque<MPI_Request> beat_requests_;       // and their sends
  std::vector<std::int64_t> sent_, received_;   // (size) beats sent to and received from each peer
  std::vector<long> pids_;                      // (size)
  std::vector<std::string> hosts_;              // (size)
};

}  // namespace

std::unique_ptr<Workers> JoinWorkers(int* argc, char*** argv) {
  // Without a launcher MPI is left alone: an Open MPI singleton start forks helper daemons for nothing.
  if (!StartedByLauncher()) return SingleProcess();
  MPI_Init(argc, argv);
  return std::make_unique<MpiWorkers>();
}

std::string MpiDescription() {
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(library, &length);
  std::string text(library, static_cast<std::size_t>(length));
  if (const auto comma = text.find(','); comma != std::string::npos) text.resize(comma);  // "Open MPI v4.1.4"
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return "MPI: " + text + " (mpirun -np N charlm train ...)";
}

}  // namespace charlm
