// How a training run hears a stop request: SIGINT, SIGTERM, SIGHUP and SIGPIPE, acknowledged at once.
#pragma once

namespace charlm {

// First SIGINT/SIGTERM/SIGHUP (a closed terminal or a dropped ssh session) or SIGPIPE (standard output's reader
// went away: `charlm train | head`): the run finishes its step, saves last.ckpt and exits 128+signal. Second:
// exit at once, touching nothing.
void InstallStopHandlers();
// The first stop signal received, or 0.
int StopSignal();
const char* StopSignalName(int signal_number);

// Whether this process acknowledges a signal (rank 0 of a data-parallel job: the others' acknowledgements would
// repeat it), and whether it is one of a job of several processes.
void SetStopAcknowledgement(bool acknowledges, bool in_job);
// Called once the loop has started: from then on the acknowledgement promises a save.
void MarkLoopStarted();

}  // namespace charlm
