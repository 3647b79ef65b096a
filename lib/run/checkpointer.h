// last.ckpt and best.ckpt: when each is saved, and the best.ckpt a run resumed into another folder copies.
#pragma once

#include "run/handler.h"

namespace charlm {

// last.ckpt every train.checkpoint_every epochs and every train.checkpoint_every_steps steps, at the last epoch
// and on any stop; best.ckpt on a new best. A run resumed into another folder starts by copying the best.ckpt of
// the folder it resumed from, when that file is this run's best so far (same model and vocabulary, saved at or
// before the checkpoint's step with the checkpoint's best score): the run's best score refers to it, and without
// it the run would end naming a best.ckpt that is not there. Otherwise it says why out_dir has no best.ckpt yet.
class Checkpointer : public TrainHandler {
 public:
  void OnTrainBegin(TrainingRun& run) override;
  void OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) override;
};

}  // namespace charlm
