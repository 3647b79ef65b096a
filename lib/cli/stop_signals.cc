// The stop-signal handlers: async-signal-safe acknowledgement and the first signal's number.
#include "cli/stop_signals.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace charlm {
namespace {

std::atomic<int> g_stop_signal{0};
// Whether the loop has started, so that the acknowledgement promises a save only when one will come: a signal
// during the start-up checks (or mpirun's SIGTERM after another rank's error) ends the run with nothing to save.
std::atomic<bool> g_acknowledges{true};
std::atomic<bool> g_loop_started{false};
// In a job of several processes, a SIGTERM before the loop starts is, but for a Ctrl-C in the first second, Open
// MPI ending the job after another process's error (MPI_Abort): that process prints why, and a "stopping" line
// from this one would announce a stop nobody asked for.
std::atomic<bool> g_in_job{false};

// Said at once (write(2) is async-signal-safe), so a user never wonders whether the Ctrl-C arrived.
void AcknowledgeStopSignal(int signal_number) {
  if (!g_acknowledges.load() || (g_in_job.load() && !g_loop_started.load())) return;
  const char* name = StopSignalName(signal_number);
  const char* rest = g_loop_started.load()
                         ? ": stopping; last.ckpt is saved first (a second signal quits at once without saving)\n"
                         : ": stopping (a second signal quits at once)\n";
  const char* parts[] = {"\ncharlm: ", name, rest};
  for (const char* part : parts) {
    if (::write(STDERR_FILENO, part, std::strlen(part)) < 0) return;  // nothing better to do in a handler
  }
}

void OnStopSignal(int signal_number) {
  if (signal_number == SIGPIPE) {
    // Every later write to the closed output raises it again: those must not count as a second signal. The
    // writes then fail with EPIPE instead, and the save goes on.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
    int expected = 0;
    if (g_stop_signal.compare_exchange_strong(expected, signal_number)) AcknowledgeStopSignal(signal_number);
    return;
  }
  int expected = 0;
  if (!g_stop_signal.compare_exchange_strong(expected, signal_number)) _exit(128 + signal_number);
  AcknowledgeStopSignal(signal_number);
}

}  // namespace

const char* StopSignalName(int signal_number) {
  switch (signal_number) {
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGPIPE: return "SIGPIPE (standard output closed)";
    default: return "SIGTERM";
  }
}

void InstallStopHandlers() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  sigaction(SIGPIPE, &action, nullptr);
}

int StopSignal() { return g_stop_signal.load(); }

void SetStopAcknowledgement(bool acknowledges, bool in_job) {
  g_acknowledges.store(acknowledges);
  g_in_job.store(in_job);
}

void MarkLoopStarted() { g_loop_started.store(true); }

}  // namespace charlm
